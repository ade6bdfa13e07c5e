"""Smart manhole cover, type ``manhole`` (identity 0x4D48)."""

from __future__ import annotations

from firmware_sim.device import Device, DeviceType
from firmware_sim.fields import flag, scaled
from firmware_sim.registers import RegisterSpec, clamp_u16, s16, to_s16, with_bit

STATUS, TILT, WATER, BATTERY, SIGNAL = range(5)
DISPLACED, TILT_ALARM, WATER_ALARM, LOW_BATTERY = range(4)
TILT_ALARM_RAW = 150  # 15.0 degrees
WATER_ALARM_MM = 500
LOW_BATTERY_MV = 3300  # not in the spec: a 3.6 V lithium cell is tired at 3.3 V
TILTED_RAW = 300
FLOODED_MM = 800
DRAIN_MV_PER_TICK = 0.002

MANHOLE = DeviceType(
    name="manhole",
    registers=(
        RegisterSpec(STATUS, "status"),
        RegisterSpec(TILT, "tilt angle", 0),
        RegisterSpec(WATER, "water level", 40),
        RegisterSpec(BATTERY, "battery", 3600),
        RegisterSpec(SIGNAL, "signal strength", to_s16(-85)),
        RegisterSpec(5, "reserved"),
        RegisterSpec(6, "identity", 0x4D48),
        RegisterSpec(7, "firmware", 0x0201),
    ),
    fields=(
        flag("displaced", STATUS, DISPLACED),
        flag("tilt_alarm", STATUS, TILT_ALARM),
        flag("water_alarm", STATUS, WATER_ALARM),
        flag("low_battery", STATUS, LOW_BATTERY),
        scaled("tilt_deg", TILT, 0.1, signed=True),
        scaled("water_level_mm", WATER),
        scaled("battery_mv", BATTERY),
        scaled("signal_dbm", SIGNAL, signed=True),
    ),
    events={
        "tilt": "cover tilted to 30.0 degrees: displaced and tilt bits",
        "water": "water in the well rises to 800 mm: water bit",
        "low-battery": "battery drops below 3300 mV",
        "clear": "back to normal",
    },
)


class ManholeCover(Device):
    """Cover with a tilt sensor, a water probe and a cellular modem."""

    TYPE = MANHOLE

    def _start(self) -> None:
        self._tilt = float(s16(self._bank[TILT]))
        self._water = float(self._bank[WATER])
        self._battery = float(self._bank[BATTERY])
        self._fresh = (self._tilt, self._water, self._battery)
        self._signal = float(s16(self._bank[SIGNAL]))
        self._displaced = False

    def _tick(self, t: float) -> None:
        rng = self._rng
        self._bank[TILT] = to_s16(self._tilt + rng.uniform(-2, 2))
        self._bank[WATER] = clamp_u16(self._water + rng.uniform(-2, 2))
        self._bank[SIGNAL] = to_s16(self._signal + rng.randint(-3, 3))
        self._battery -= DRAIN_MV_PER_TICK
        self._bank[BATTERY] = clamp_u16(self._battery)

    def _settle(self, now: float) -> None:
        bank = self._bank
        status = with_bit(0, DISPLACED, self._displaced)
        status = with_bit(status, TILT_ALARM, abs(s16(bank[TILT])) > TILT_ALARM_RAW)
        status = with_bit(status, WATER_ALARM, bank[WATER] > WATER_ALARM_MM)
        bank[STATUS] = with_bit(status, LOW_BATTERY, bank[BATTERY] < LOW_BATTERY_MV)

    def _event(self, event: str, now: float) -> None:
        if event == "tilt":
            self._tilt, self._displaced = float(TILTED_RAW), True
        elif event == "water":
            self._water = float(FLOODED_MM)
        elif event == "low-battery":
            self._battery = LOW_BATTERY_MV - 100.0
        else:
            self._tilt, self._water, fresh_battery = self._fresh
            self._battery = max(self._battery, fresh_battery)
            self._displaced = False
        self._bank[TILT] = to_s16(self._tilt)
        self._bank[WATER] = clamp_u16(self._water)
        self._bank[BATTERY] = clamp_u16(self._battery)
