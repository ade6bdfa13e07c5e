"""How long each fault lasts: ``GRIDALARM_FAULT_LENGTH=full`` by hand, ``short`` (default) in CI.

The database lock is 30 s in both: that length is an acceptance item of its own (longer than
every busy timeout, so the worker must wait it out rather than block through it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV = "GRIDALARM_FAULT_LENGTH"


@dataclass(frozen=True)
class Durations:
    """Seconds each fault is held before it is healed."""

    name: str
    broker_down_s: float
    gateway_dead_s: float
    database_locked_s: float
    postgres_down_s: float
    influx_down_s: float
    sms_failing_s: float
    sms_slow_s: float
    disk_full_s: float

    def timeout_s(self, held_s: float) -> float:
        """A test's pytest timeout: the fault held plus room to set up, recover and check."""
        return held_s + 150


FULL = Durations("full", 600, 60, 30, 60, 120, 120, 60, 120)
SHORT = Durations("short", 12, 4, 30, 6, 8, 8, 8, 8)


def chosen() -> Durations:
    """The durations ``GRIDALARM_FAULT_LENGTH`` asks for; anything but full/short is refused."""
    value = os.environ.get(ENV, "short").strip().lower()
    if value not in ("full", "short"):
        raise ValueError(f"{ENV}={value!r}: use 'full' (by hand) or 'short' (CI, the default)")
    return FULL if value == "full" else SHORT


LENGTH = chosen()
SLOW_SMS_ANSWER_S = 5.0  # the provider's answer time once it answers again
