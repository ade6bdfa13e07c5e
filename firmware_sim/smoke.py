"""Smoke detector, type ``smoke`` (identity 0x5301)."""

from __future__ import annotations

from firmware_sim.device import Device, DeviceType
from firmware_sim.fields import flag, scaled, switch
from firmware_sim.registers import RegisterSpec, clamp_u16, s16, to_s16, with_bit

STATUS, OBSCURATION, TEMPERATURE, BATTERY, THRESHOLD, SOUNDER = range(6)
ALARM, FAULT, TEST, LOW_BATTERY, TAMPER = range(5)
LOW_BATTERY_MV = 2600
TEST_S = 5.0
CLEAN_AIR = 8  # 0.08 %/m
SMOKE_MARGIN = 150  # an event puts obscuration 1.50 %/m above the threshold
DRAIN_MV_PER_TICK = 0.005  # 36 mV per hour

SMOKE = DeviceType(
    name="smoke",
    registers=(
        RegisterSpec(STATUS, "status"),
        RegisterSpec(OBSCURATION, "obscuration", CLEAN_AIR),
        RegisterSpec(TEMPERATURE, "temperature", 215),
        RegisterSpec(BATTERY, "battery", 3000),
        RegisterSpec(THRESHOLD, "alarm threshold", 300, writable=True, minimum=50, maximum=400),
        RegisterSpec(SOUNDER, "sounder", 0, writable=True, maximum=1),
        RegisterSpec(6, "identity", 0x5301),
        RegisterSpec(7, "firmware", 0x0102),
    ),
    fields=(
        flag("alarm", STATUS, ALARM),
        flag("fault", STATUS, FAULT),
        flag("test", STATUS, TEST),
        flag("low_battery", STATUS, LOW_BATTERY),
        flag("tamper", STATUS, TAMPER),
        scaled("obscuration_pct_per_m", OBSCURATION, 0.01),
        scaled("temperature_c", TEMPERATURE, 0.1, signed=True),
        scaled("battery_mv", BATTERY),
        scaled("alarm_threshold_pct_per_m", THRESHOLD, 0.01),
        switch("sounder_silenced", SOUNDER),
    ),
    events={
        "smoke": "obscuration rises past the threshold, alarm bit set",
        "test": "test bit for 5 s",
        "fault": "fault bit set",
        "low-battery": "battery drops below 2600 mV",
        "tamper": "removed from its base",
        "clear": "back to normal",
    },
)


class SmokeDetector(Device):
    """Optical smoke detector: noisy temperature, a slowly draining battery, smoke on demand."""

    TYPE = SMOKE

    def _start(self) -> None:
        self._air = float(self._bank[OBSCURATION])
        self._room = float(s16(self._bank[TEMPERATURE]))
        self._battery = float(self._bank[BATTERY])
        self._fresh_battery = self._battery
        self._test_until = float("-inf")
        self._was_alarm = False

    def _tick(self, t: float) -> None:
        rng = self._rng
        self._bank[OBSCURATION] = clamp_u16(self._air + rng.uniform(-3, 3))
        self._bank[TEMPERATURE] = to_s16(self._room + rng.uniform(-2, 2))
        self._battery -= DRAIN_MV_PER_TICK
        self._bank[BATTERY] = clamp_u16(self._battery)

    def _settle(self, now: float) -> None:
        bank = self._bank
        alarm = bank[OBSCURATION] >= bank[THRESHOLD]
        if self._was_alarm and not alarm:
            bank[SOUNDER] = 0  # silence ends with the alarm
        self._was_alarm = alarm
        status = with_bit(bank[STATUS], ALARM, alarm)
        status = with_bit(status, TEST, now < self._test_until)
        bank[STATUS] = with_bit(status, LOW_BATTERY, bank[BATTERY] < LOW_BATTERY_MV)

    def _event(self, event: str, now: float) -> None:
        bank = self._bank
        if event == "smoke":
            self._air = float(bank[THRESHOLD] + SMOKE_MARGIN)
            bank[OBSCURATION] = clamp_u16(self._air)
        elif event == "test":
            self._test_until = now + TEST_S
        elif event in ("fault", "tamper"):
            bank[STATUS] = with_bit(bank[STATUS], FAULT if event == "fault" else TAMPER, True)
        elif event == "low-battery":
            self._battery = LOW_BATTERY_MV - 100.0
            bank[BATTERY] = clamp_u16(self._battery)
        else:
            self._clear()

    def _clear(self) -> None:
        self._air = float(CLEAN_AIR)
        self._test_until = float("-inf")
        self._battery = max(self._battery, self._fresh_battery)
        self._bank[OBSCURATION] = CLEAN_AIR
        self._bank[BATTERY] = clamp_u16(self._battery)
        self._bank[SOUNDER] = 0
        self._bank[STATUS] = 0
