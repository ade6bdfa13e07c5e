"""Simulator configs and scenarios: pydantic models, one schema for both.

A config file lists buses (optional: a bus named only by its devices gets defaults), devices
and a timeline; a scenario file has the same shape and is played on top of a config
(``merge``). Every error names the file, the YAML line and the field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from firmware_sim.bus import Transport
from firmware_sim.device import Fault

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
DeviceTypeName = Literal["smoke", "ebike", "manhole", "flood"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BusConfig(_Model):
    """One simulated bus: a pty line (rtu, ascii) or a TCP server."""

    name: Ident = Field(description="Bus name, e.g. 'bus-1'; devices refer to it.")
    transport: Transport = Field(description="rtu, tcp or ascii.")
    baud: int = Field(default=9600, gt=0, description="Serial speed (rtu, ascii); paces replies.")
    parity: Literal["N", "E", "O"] = Field(default="N", description="Serial parity (rtu, ascii).")
    stopbits: Literal[1, 2] = Field(default=1, description="Serial stop bits (rtu, ascii).")
    port: int = Field(default=0, ge=0, lt=65536, description="TCP port on 127.0.0.1; 0 = any free.")


class DeviceConfig(_Model):
    """One simulated unit on one bus."""

    id: Ident = Field(description="Device id, e.g. 'smk-0001'.")
    type: DeviceTypeName = Field(description="Device type: smoke, ebike, manhole or flood.")
    transport: Transport = Field(description="rtu, tcp or ascii (ascii: smoke only).")
    bus: Ident = Field(description="Name of the bus the device hangs on.")
    unit: int = Field(default=1, ge=1, le=247, description="Modbus unit id / ASCII address.")
    seed: int = Field(default=0, description="Seed of the device's noise: same seed, same values.")
    initial: dict[str, float | bool] = Field(
        default_factory=dict,
        description="Initial values in engineering units, by truth name (e.g. temperature_c).",
    )


class Step(_Model):
    """One timeline entry: an event or a fault on one device at a scenario time."""

    at_s: float = Field(ge=0, description="Seconds (simulated) after the start.")
    device: Ident = Field(description="Device id.")
    event: str | None = Field(None, description="Event name from REGISTERS.md, e.g. 'smoke'.")
    fault: Fault | None = Field(None, description="Fault kind: silent, crc, exception, ...")

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        if (self.event is None) == (self.fault is None):
            raise ValueError("give exactly one of 'event' or 'fault'")
        return self


class SimConfig(_Model):
    """Buses, devices and a timeline."""

    buses: list[BusConfig] = Field(default_factory=list, description="Bus settings.")
    devices: list[DeviceConfig] = Field(default_factory=list, description="Simulated units.")
    timeline: list[Step] = Field(default_factory=list, description="Scripted events and faults.")

    def bus_configs(self) -> list[BusConfig]:
        """Declared buses, plus one with defaults for each bus only named by a device."""
        out = {b.name: b for b in self.buses}
        for d in self.devices:
            out.setdefault(d.bus, BusConfig(name=d.bus, transport=d.transport))
        return list(out.values())


def merge(base: SimConfig, extra: SimConfig) -> SimConfig:
    """*extra* (a scenario) played on *base*: everything appended."""
    return SimConfig(
        buses=[*base.buses, *extra.buses],
        devices=[*base.devices, *extra.devices],
        timeline=[*base.timeline, *extra.timeline],
    )
