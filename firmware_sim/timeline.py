"""Play a scenario's timeline against the devices, on the simulator clock."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from firmware_sim.clock import Clock
from firmware_sim.config import Step
from firmware_sim.device import Device

logger = logging.getLogger(__name__)


async def play(
    steps: Sequence[Step], devices: Mapping[str, Device], clock: Clock, start: float
) -> None:
    """Apply each step at ``start + at_s``; the event time is the scripted one, not the wake-up."""
    for step in sorted(steps, key=lambda s: s.at_s):
        at = start + step.at_s
        await clock.sleep_until(at)
        device = devices[step.device]
        if step.event is not None:
            device.trigger(step.event, at)
            logger.info("%s: event %s at +%.1f s", step.device, step.event, step.at_s)
        elif step.fault is not None:
            device.set_fault(step.fault)
            logger.info("%s: fault %s at +%.1f s", step.device, step.fault, step.at_s)
