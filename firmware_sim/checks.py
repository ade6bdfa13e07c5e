"""Cross-field checks of a config that pydantic cannot see field by field."""

from __future__ import annotations

from firmware_sim.bus import Transport
from firmware_sim.catalog import TYPES
from firmware_sim.config import DeviceConfig, SimConfig, Step

Loc = tuple[int | str, ...]
Problem = tuple[Loc, str]


def problems(cfg: SimConfig, base: SimConfig | None = None) -> list[Problem]:
    """What is wrong with *cfg*, seen on top of *base* (whose devices it may use)."""
    base = base or SimConfig()
    out: list[Problem] = []
    transports = {b.name: b.transport for b in base.bus_configs()}
    for i, bus in enumerate(cfg.buses):
        if bus.name in transports:
            out.append((("buses", i, "name"), f"bus {bus.name!r} is declared twice"))
        transports[bus.name] = bus.transport
    devices = {d.id: d for d in base.devices}
    units = {(d.bus, d.unit) for d in base.devices}
    for i, dev in enumerate(cfg.devices):
        found = _device(dev, devices, transports, units)
        out += [(("devices", i, *loc), msg) for loc, msg in found]
        devices[dev.id] = dev
        units.add((dev.bus, dev.unit))
    for i, step in enumerate(cfg.timeline):
        out += [(("timeline", i, *loc), msg) for loc, msg in _step(step, devices)]
    return out


def _device(
    dev: DeviceConfig,
    devices: dict[str, DeviceConfig],
    transports: dict[str, Transport],
    units: set[tuple[str, int]],
) -> list[Problem]:
    out: list[Problem] = []
    if dev.id in devices:
        out.append((("id",), f"device id {dev.id!r} is used twice"))
    bus_transport = transports.setdefault(dev.bus, dev.transport)
    if bus_transport != dev.transport:
        out.append((("transport",), f"bus {dev.bus!r} is {bus_transport}, not {dev.transport}"))
    if dev.transport is Transport.ASCII and dev.type != "smoke":
        out.append((("type",), "only smoke detectors speak the ASCII line protocol"))
    if (dev.bus, dev.unit) in units:
        out.append((("unit",), f"unit {dev.unit} is taken on bus {dev.bus!r}"))
    settable = TYPES[dev.type].settable()
    for key in dev.initial:
        if key not in settable:
            out.append((("initial", key), f"not settable on {dev.type}; one of {settable}"))
    return out


def _step(step: Step, devices: dict[str, DeviceConfig]) -> list[Problem]:
    dev = devices.get(step.device)
    if dev is None:
        return [(("device",), f"no device {step.device!r}")]
    events = TYPES[dev.type].events
    if step.event is not None and step.event not in events:
        return [(("event",), f"{dev.type} has no event {step.event!r}; one of {list(events)}")]
    return []
