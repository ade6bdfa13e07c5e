"""The four device types by name."""

from __future__ import annotations

from collections.abc import Mapping

from firmware_sim.device import Device, DeviceType
from firmware_sim.ebike import EbikeBlocker
from firmware_sim.flood import FloodGauge
from firmware_sim.manhole import ManholeCover
from firmware_sim.smoke import SmokeDetector

MODELS: Mapping[str, type[Device]] = {
    cls.TYPE.name: cls for cls in (SmokeDetector, EbikeBlocker, ManholeCover, FloodGauge)
}
TYPES: Mapping[str, DeviceType] = {name: cls.TYPE for name, cls in MODELS.items()}


def events_help() -> str:
    """One line per type listing its events (for CLI help)."""
    return "\n".join(f"{name}: {', '.join(t.events)}" for name, t in TYPES.items())
