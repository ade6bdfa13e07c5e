"""16-bit register words: conversions and the register table of a device type."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

BANK_SIZE = 8
IDENTITY_REG = 0x0006
FIRMWARE_REG = 0x0007
DATA_REGS = range(0, IDENTITY_REG)


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """One holding register: where, what, whether a client may write it and which values."""

    address: int
    name: str
    default: int = 0
    writable: bool = False
    minimum: int = 0
    maximum: int = 0xFFFF


def clamp_u16(value: float) -> int:
    """Round and clamp to 0..65535."""
    return max(0, min(0xFFFF, round(value)))


def to_s16(value: float) -> int:
    """Round, clamp to -32768..32767 and encode as a two's-complement word."""
    return max(-0x8000, min(0x7FFF, round(value))) & 0xFFFF


def s16(raw: int) -> int:
    """Decode a two's-complement word."""
    return raw - 0x10000 if raw & 0x8000 else raw


def u32_words(value: int) -> tuple[int, int]:
    """Big-endian word order: (high, low)."""
    value &= 0xFFFFFFFF
    return value >> 16, value & 0xFFFF


def u32(high: int, low: int) -> int:
    """Join two words, high first."""
    return (high << 16) | low


def f32_cdab_words(value: float) -> tuple[int, int]:
    """IEEE-754 float32 as two words in CDAB order (low word first)."""
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return low, high


def f32_cdab(first: int, second: int) -> float:
    """Decode a CDAB float32 (first register holds the low word) to a Python float."""
    value: float = struct.unpack(">f", struct.pack(">HH", second, first))[0]
    return value


def bit(word: int, index: int) -> bool:
    """Bit *index* of *word*."""
    return bool(word >> index & 1)


def with_bit(word: int, index: int, on: bool) -> int:
    """*word* with bit *index* set or cleared."""
    return word | 1 << index if on else word & ~(1 << index) & 0xFFFF


def defaults(table: Sequence[RegisterSpec]) -> list[int]:
    """A fresh bank from a register table."""
    return [spec.default for spec in table]
