"""E-bike lift blocker, type ``ebike`` (identity 0x4542)."""

from __future__ import annotations

from collections.abc import Sequence

from firmware_sim.device import Device, DeviceType, TruthField, Value
from firmware_sim.fields import flag, scaled, switch
from firmware_sim.registers import RegisterSpec, u32, u32_words, with_bit

STATUS, COUNTER, TS_HIGH, TS_LOW, DOOR_HOLD, HOLD_ENABLE = range(6)
PRESENT, HELD, CAMERA_FAULT = range(3)
PRESENT_S = 10.0


def _get_ts(bank: Sequence[int]) -> Value:
    return u32(bank[TS_HIGH], bank[TS_LOW])


def _put_ts(bank: list[int], value: float) -> None:
    bank[TS_HIGH], bank[TS_LOW] = u32_words(int(value))


EBIKE = DeviceType(
    name="ebike",
    registers=(
        RegisterSpec(STATUS, "status"),
        RegisterSpec(COUNTER, "detection counter"),
        RegisterSpec(TS_HIGH, "last detection time, high word"),
        RegisterSpec(TS_LOW, "last detection time, low word"),
        RegisterSpec(DOOR_HOLD, "door-hold state"),
        RegisterSpec(HOLD_ENABLE, "door-hold enable", 1, writable=True, maximum=1),
        RegisterSpec(6, "identity", 0x4542),
        RegisterSpec(7, "firmware", 0x0100),
    ),
    fields=(
        flag("ebike_present", STATUS, PRESENT),
        flag("door_held", STATUS, HELD),
        flag("camera_fault", STATUS, CAMERA_FAULT),
        scaled("detections", COUNTER),
        TruthField("last_detection_ts", _get_ts, _put_ts),
        switch("door_hold_enabled", HOLD_ENABLE),
    ),
    events={
        "ebike": "one detection: counter+1, time set, present and door held for 10 s",
        "camera-fault": "camera fault bit set",
        "clear": "back to normal",
    },
)


class EbikeBlocker(Device):
    """Lift-car camera: each detection holds the door for a while (if enabled)."""

    TYPE = EBIKE

    def _start(self) -> None:
        self._present_until = float("-inf")

    def _tick(self, t: float) -> None:
        """Nothing drifts on a camera."""

    def _settle(self, now: float) -> None:
        bank = self._bank
        present = now < self._present_until
        held = present and bank[HOLD_ENABLE] == 1
        status = with_bit(bank[STATUS], PRESENT, present)
        bank[STATUS] = with_bit(status, HELD, held)
        bank[DOOR_HOLD] = int(held)

    def _event(self, event: str, now: float) -> None:
        bank = self._bank
        if event == "ebike":
            bank[COUNTER] = (bank[COUNTER] + 1) & 0xFFFF
            _put_ts(bank, now)
            self._present_until = now + PRESENT_S
        elif event == "camera-fault":
            bank[STATUS] = with_bit(bank[STATUS], CAMERA_FAULT, True)
        else:
            self._present_until = float("-inf")
            bank[STATUS] = 0
