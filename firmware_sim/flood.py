"""Flood / water-level gauge, type ``flood`` (identity 0x464C)."""

from __future__ import annotations

from collections.abc import Sequence

from firmware_sim.device import TICK_S, Device, DeviceType, TruthField, Value
from firmware_sim.fields import flag, scaled
from firmware_sim.registers import RegisterSpec, clamp_u16, f32_cdab, f32_cdab_words, with_bit

STATUS, LEVEL_1, LEVEL_2, RAIN, RAIN_DECIMALS, ALARM_POINT = range(6)
SENSOR_FAULT, LEVEL_ALARM = range(2)
RISE_MM = 400.0
RISE_S = 60.0  # `rise` climbs 0 -> 400 mm over one simulated minute (scaled by --speed)
RAIN_MM_H = 35.0
MM_PER_S_PER_MM_H = 1 / 35  # heavy rain (35 mm/h) fills the street gauge by 1 mm/s
DRAIN_MM_PER_S = 0.2


def _get_level(bank: Sequence[int]) -> Value:
    return f32_cdab(bank[LEVEL_1], bank[LEVEL_2])


def _put_level(bank: list[int], value: float) -> None:
    bank[LEVEL_1], bank[LEVEL_2] = f32_cdab_words(value)


def _get_rain(bank: Sequence[int]) -> Value:
    rate: float = bank[RAIN] * 10 ** -bank[RAIN_DECIMALS]
    return rate


def _put_rain(bank: list[int], value: float) -> None:
    bank[RAIN] = clamp_u16(value * 10 ** bank[RAIN_DECIMALS])


FLOOD = DeviceType(
    name="flood",
    registers=(
        RegisterSpec(STATUS, "status"),
        RegisterSpec(LEVEL_1, "water level, word 1"),
        RegisterSpec(LEVEL_2, "water level, word 2"),
        RegisterSpec(RAIN, "rainfall rate"),
        RegisterSpec(RAIN_DECIMALS, "rainfall decimals", 1),
        RegisterSpec(ALARM_POINT, "level alarm point", 300, writable=True),
        RegisterSpec(6, "identity", 0x464C),
        RegisterSpec(7, "firmware", 0x0110),
    ),
    fields=(
        flag("sensor_fault", STATUS, SENSOR_FAULT),
        flag("level_alarm", STATUS, LEVEL_ALARM),
        TruthField("level_mm", _get_level, _put_level),
        TruthField("rain_mm_h", _get_rain, _put_rain),
        scaled("level_alarm_point_mm", ALARM_POINT),
    ),
    events={
        "rise": "level climbs 0 -> 400 mm over 60 simulated seconds",
        "rain": "rainfall 35.0 mm/h; the level rises while it rains",
        "fault": "sensor fault bit set",
        "clear": "back to normal",
    },
)


class FloodGauge(Device):
    """Street water-level gauge with a rain sensor: rain fills, dry weather drains."""

    TYPE = FLOOD

    def _start(self) -> None:
        self._level = float(_get_level(self._bank))
        self._dry_level = self._level
        self._rise_from: float | None = None

    def _tick(self, t: float) -> None:
        rain = float(_get_rain(self._bank))
        if rain > 0:
            self._level += rain * MM_PER_S_PER_MM_H * TICK_S
        else:
            self._level = max(self._dry_level, self._level - DRAIN_MM_PER_S * TICK_S)
        if self._rise_from is not None:
            ramp = RISE_MM * min(1.0, (t - self._rise_from) / RISE_S)
            self._level = max(self._level, ramp)
        noisy = self._level + self._rng.uniform(-0.5, 0.5) if self._level > 0 else 0.0
        _put_level(self._bank, noisy)

    def _settle(self, now: float) -> None:
        level = float(_get_level(self._bank))
        bank = self._bank
        bank[STATUS] = with_bit(bank[STATUS], LEVEL_ALARM, level > bank[ALARM_POINT])

    def _event(self, event: str, now: float) -> None:
        bank = self._bank
        if event == "rise":
            self._rise_from = now
        elif event == "rain":
            _put_rain(bank, RAIN_MM_H)
        elif event == "fault":
            bank[STATUS] = with_bit(bank[STATUS], SENSOR_FAULT, True)
        else:
            self._rise_from = None
            self._level = self._dry_level
            _put_level(bank, self._level)
            bank[RAIN] = 0
            bank[STATUS] = 0
