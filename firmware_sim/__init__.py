"""Simulated RS485 field devices ("the field"): smoke, ebike, manhole and flood units.

Register maps and protocols: ``firmware_sim/REGISTERS.md``. This package stands alone: it
imports nothing of ``edge``, ``wire`` or ``gridalarm``.

In-process API (tests, demos)::

    from firmware_sim import SimulatorSet, ManualClock

    async with SimulatorSet.from_config("firmware_sim/scenarios/demo.yaml") as sims:
        sims.endpoints()   # [Endpoint(bus, transport, address)]: address is the pty slave
                           # path (rtu, ascii) or "127.0.0.1:PORT" (tcp)
        sims.devices()     # [DeviceInfo(id, type, transport, bus, unit, address)]
        dev = sims.device("smk-0001")       # DeviceHandle; UnknownDeviceError if absent
        dev.truth()        # {"alarm": False, "temperature_c": 21.5, ...} engineering units,
                           # computed from the raw registers as raw * scale
        dev.registers()    # the 8 raw words as the wire shows them (faults applied)
        dev.trigger("smoke")                # UnknownEventError if not the type's event
        dev.set_fault("crc")                # silent|crc|exception|stuck|garbage|none
        sims.stats("bus-1")                 # BusStats(requests, replies, crc_errors_sent, ...)
        await sims.timeline_done()          # a scenario's last step has been applied

``SimulatorSet.from_config(config, *, scenario=None, clock=None, speed=1.0)`` takes a
``SimConfig`` or a YAML path; ``scenario`` (same shape) is played on top. ``clock`` defaults
to wall time scaled by ``speed``; pass a ``ManualClock`` to drive behaviour by hand (``truth``
and replies use the clock; line pacing is always wall time). Given the same seed and the same
event times, values are identical (the models advance in fixed 0.5 s ticks).

Serial lines are paced like the wire: a reply becomes readable when its last byte would have
arrived at the bus's baud rate (see ``firmware_sim.line``).

Live control of a running ``gridalarm sim run``: ``firmware_sim.control`` (JSON lines over TCP,
address in ``$GRIDALARM_STATE_DIR/sim.json``) and the CLI in ``firmware_sim.cli``.
"""

from firmware_sim.bus import Transport
from firmware_sim.catalog import TYPES
from firmware_sim.clock import Clock, ManualClock, ScaledClock
from firmware_sim.config import BusConfig, DeviceConfig, SimConfig, Step
from firmware_sim.device import Fault
from firmware_sim.errors import (
    ScenarioError,
    SimError,
    UnknownDeviceError,
    UnknownEventError,
    UnknownFaultError,
)
from firmware_sim.line import LineTiming
from firmware_sim.loader import load_config, parse_config
from firmware_sim.simset import DeviceHandle, DeviceInfo, Endpoint, SimulatorSet
from firmware_sim.stats import BusStats

__all__ = [
    "TYPES",
    "BusConfig",
    "BusStats",
    "Clock",
    "DeviceConfig",
    "DeviceHandle",
    "DeviceInfo",
    "Endpoint",
    "Fault",
    "LineTiming",
    "ManualClock",
    "ScaledClock",
    "ScenarioError",
    "SimConfig",
    "SimError",
    "SimulatorSet",
    "Step",
    "Transport",
    "UnknownDeviceError",
    "UnknownEventError",
    "UnknownFaultError",
    "load_config",
    "parse_config",
]
