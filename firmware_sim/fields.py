"""Builders for the truth-field tables: status bits and scaled registers."""

from __future__ import annotations

from collections.abc import Sequence

from firmware_sim.device import TruthField, Value
from firmware_sim.registers import bit, clamp_u16, s16, to_s16


def flag(key: str, reg: int, index: int) -> TruthField:
    """A status bit, read-only (the device derives it)."""

    def get(bank: Sequence[int]) -> Value:
        return bit(bank[reg], index)

    return TruthField(key, get)


def switch(key: str, reg: int) -> TruthField:
    """A 0/1 register read as a bool, settable."""

    def get(bank: Sequence[int]) -> Value:
        return bank[reg] != 0

    def put(bank: list[int], value: float) -> None:
        bank[reg] = 1 if value else 0

    return TruthField(key, get, put)


def scaled(key: str, reg: int, scale: float = 1, *, signed: bool = False) -> TruthField:
    """``raw * scale`` (``s16(raw) * scale`` when signed); integers stay integers at scale 1."""

    def get(bank: Sequence[int]) -> Value:
        raw = s16(bank[reg]) if signed else bank[reg]
        return raw if scale == 1 else raw * scale

    def put(bank: list[int], value: float) -> None:
        bank[reg] = to_s16(value / scale) if signed else clamp_u16(value / scale)

    return TruthField(key, get, put)
