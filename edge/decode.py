"""Turning register words into typed values: converters compiled once per profile.

Pure and cheap per poll: a profile compiles each measurement into a small closure at load
time, so decoding a poll is a loop over closures, no lookups by name or dtype.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

Value = float | int | bool
Words = tuple[int, ...]
# Pulls one measurement's words (plus its decimals register, if any) out of the read blocks.
Fetch = Callable[[Sequence[Sequence[int]]], Words]
# Turns those words into a value; None means "invalid" (out of range, NaN, bad decimals).
Convert = Callable[[Words], Value | None]

MAX_DECIMALS = 9


class DType(StrEnum):
    """How a measurement's register words encode its raw value."""

    U16 = "u16"
    S16 = "s16"
    U32 = "u32"
    S32 = "s32"
    F32 = "f32"
    BIT = "bit"

    @property
    def words(self) -> int:
        """Registers the type occupies."""
        return 2 if self in (DType.U32, DType.S32, DType.F32) else 1

    @property
    def integer(self) -> bool:
        """True for integer types (bit excluded)."""
        return self in (DType.U16, DType.S16, DType.U32, DType.S32)


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One FC03 read: ``count`` holding registers from ``address``."""

    address: int
    count: int


@dataclass(frozen=True, slots=True)
class Decoded:
    """One poll's values by measurement name; ``invalid`` names those that read as garbage."""

    values: dict[str, Value]
    invalid: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FieldEvent:
    """A discrete event: ``active`` True (began), False (ended) or None (momentary)."""

    name: str
    active: bool | None
    detail: dict[str, Value] = field(default_factory=dict)


def _swap_bytes(words: Words) -> Words:
    return tuple(((w & 0xFF) << 8) | (w >> 8) for w in words)


def _s16(words: Words) -> int:
    w = words[0]
    return w - 0x1_0000 if w & 0x8000 else w


def _u32(words: Words) -> int:
    return (words[0] << 16) | words[1]


def _s32(words: Words) -> int:
    v = (words[0] << 16) | words[1]
    return v - 0x1_0000_0000 if v & 0x8000_0000 else v


def _f32(words: Words) -> float:
    return float(struct.unpack(">f", struct.pack(">HH", words[0], words[1]))[0])


_RAW: dict[DType, Callable[[Words], int | float]] = {
    DType.U16: lambda words: words[0],
    DType.S16: _s16,
    DType.U32: _u32,
    DType.S32: _s32,
    DType.F32: _f32,
}


def raw_reader(
    dtype: DType, *, word_swap: bool = False, byte_swap: bool = False
) -> Callable[[Words], int | float]:
    """The raw (unscaled) value of ``dtype`` from words in the device's word and byte order."""
    base = _RAW[dtype]
    if not (word_swap or byte_swap):
        return base

    def read(words: Words) -> int | float:
        if byte_swap:
            words = _swap_bytes(words)
        return base(words[::-1] if word_swap else words)

    return read


def _in_range(lo: float | None, hi: float | None) -> Callable[[float], bool]:
    lo_ = -math.inf if lo is None else lo
    hi_ = math.inf if hi is None else hi
    return lambda v: lo_ <= v <= hi_ and math.isfinite(v)


def bit_converter(bit: int, valid_min: float | None, valid_max: float | None) -> Convert:
    """A status bit as bool; the range applies to the whole register word (reserved bits)."""
    ok = _in_range(valid_min, valid_max)

    def convert(words: Words) -> Value | None:
        w = words[0]
        return bool((w >> bit) & 1) if ok(w) else None

    return convert


def number_converter(
    raw: Callable[[Words], int | float],
    *,
    scale: float,
    keep_int: bool,
    decimals: bool,
    valid_min: float | None,
    valid_max: float | None,
) -> Convert:
    """A number: ``raw * scale`` (times ``10**-d`` when the last word is a decimals register)."""
    ok = _in_range(valid_min, valid_max)

    if decimals:

        def convert(words: Words) -> Value | None:
            d = words[-1]
            if d > MAX_DECIMALS:
                return None
            value = raw(words[:-1]) * scale * 10.0**-d
            return value if ok(value) else None

    elif keep_int:

        def convert(words: Words) -> Value | None:
            value = raw(words)
            return value if ok(value) else None

    else:

        def convert(words: Words) -> Value | None:
            value = raw(words) * scale
            return value if ok(value) else None

    return convert


def register_fetch(addresses: Sequence[int], plan: Sequence[ReadBlock]) -> Fetch:
    """A function picking ``addresses`` out of the blocks read per ``plan``."""
    spots = [_locate(a, plan) for a in addresses]
    if len(spots) == 1:
        (b, o) = spots[0]
        return lambda blocks: (blocks[b][o],)
    return lambda blocks: tuple(blocks[b][o] for b, o in spots)


def _locate(address: int, plan: Sequence[ReadBlock]) -> tuple[int, int]:
    for i, block in enumerate(plan):
        if block.address <= address < block.address + block.count:
            return i, address - block.address
    raise ValueError(f"register {address} is in no read block")


def plan_reads(
    addresses: Sequence[int], *, max_gap: int = 10, max_count: int = 125
) -> list[ReadBlock]:
    """Fewest FC03 reads covering ``addresses``.

    Two runs of registers are merged when the gap between them is at most ``max_gap``
    registers: reading a register costs 2 bytes on the line, a transaction ~20 characters.
    """
    blocks: list[ReadBlock] = []
    for a in sorted(set(addresses)):
        if blocks:
            last = blocks[-1]
            end = last.address + last.count
            if a < end:
                continue
            if a - end <= max_gap and a - last.address + 1 <= max_count:
                blocks[-1] = ReadBlock(last.address, a - last.address + 1)
                continue
        blocks.append(ReadBlock(a, 1))
    return blocks
