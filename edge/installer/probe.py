"""`probe` and `watch`: one device's decoded values, read over its bus or from the gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from edge.config import DeviceConfig, SerialBus, TcpBus
from edge.decode import Value
from edge.drivers import open_bus
from edge.errors import BusError, DeviceError
from edge.installer.errors import GatewayNotRunningError, UsageError
from edge.installer.statusfile import GatewayState, read_state
from edge.profile import Profile
from edge.site import Site

BUS = "bus"
GATEWAY = "gateway"


@dataclass(frozen=True)
class Reading:
    """One reading of a device: values by measurement, or the error that stopped it."""

    unit: int
    profile: Profile
    values: dict[str, Value]
    invalid: tuple[str, ...] = ()
    error: str = ""
    source: str = BUS  # BUS: read by us now; GATEWAY: the running gateway's last values
    device: str | None = None
    ts: float = 0.0

    def rows(self) -> list[tuple[str, Value | None, str]]:
        """(measurement, value or None, unit) in the profile's order."""
        return [(m.name, self.values.get(m.name), m.unit) for m in self.profile.measurements]

    def as_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "unit": self.unit,
            "profile": self.profile.name,
            "source": self.source,
            "ts": self.ts,
            "error": self.error,
            "invalid": list(self.invalid),
            "values": {
                name: {"value": value, "unit": unit}
                for name, value, unit in self.rows()
                if value is not None
            },
        }


async def read_once(
    bus: SerialBus | TcpBus,
    unit: int,
    profile: Profile,
    *,
    timeout_s: float,
    retries: int = 1,
    device: str | None = None,
) -> Reading:
    """Open the bus, read the device once; DeviceError / BusError if that fails."""
    async with open_bus(bus) as client:
        decoded = await client.read_device(unit, profile, timeout_s=timeout_s, retries=retries)
    return Reading(unit, profile, decoded.values, decoded.invalid, device=device, ts=time.time())


def device_of(site: Site, device_id: str) -> DeviceConfig:
    """The configured device *device_id*; UsageError naming the known ones if absent."""
    for device in site.config.devices:
        if device.id == device_id:
            return device
    known = ", ".join(d.id for d in site.config.devices) or "none"
    raise UsageError(f"no device {device_id!r} in {site.path} (known: {known})")


async def probe_configured(site: Site, device_id: str) -> Reading:
    """Read a configured device once over its bus."""
    dev = device_of(site, device_id)
    return await read_once(
        site.config.bus(dev.bus),
        dev.unit,
        site.profiles.get(dev.profile),
        timeout_s=dev.timeout_s,
        retries=dev.retries,
        device=dev.id,
    )


async def watch(
    site: Site, device_id: str, *, interval_s: float, count: int | None
) -> AsyncIterator[Reading]:
    """Readings of a configured device every *interval_s* (*count* of them, or forever).

    While a gateway runs it owns the bus (RS485 has one master), so its status file is read
    instead; otherwise the device is polled directly, and a failed poll is a reading with an
    error, not the end of the watch.
    """
    dev = device_of(site, device_id)
    profile = site.profiles.get(dev.profile)
    readings = _from_gateway(site, dev, profile) if _gateway_running(site) else None
    if readings is None:
        try:
            async with open_bus(site.config.bus(dev.bus)) as client:
                async for r in _paced(_from_bus(client, dev, profile), interval_s, count):
                    yield r
            return
        except BusError:
            if not _gateway_running(site):
                raise
            readings = _from_gateway(site, dev, profile)
    async for r in _paced(readings, interval_s, count):
        yield r


async def _paced(
    readings: AsyncIterator[Reading], interval_s: float, count: int | None
) -> AsyncIterator[Reading]:
    n = 0
    async for reading in readings:
        yield reading
        n += 1
        if count is not None and n >= count:
            return
        await asyncio.sleep(interval_s)  # the watch cadence, not a wait for a condition


async def _from_bus(client: Any, dev: DeviceConfig, profile: Profile) -> AsyncIterator[Reading]:
    while True:
        try:
            decoded = await client.read_device(
                dev.unit, profile, timeout_s=dev.timeout_s, retries=dev.retries
            )
        except DeviceError as err:
            yield Reading(
                dev.unit, profile, {}, error=f"{err.kind}: {err}", device=dev.id, ts=time.time()
            )
        else:
            yield Reading(
                dev.unit, profile, decoded.values, decoded.invalid, device=dev.id, ts=time.time()
            )


async def _from_gateway(site: Site, dev: DeviceConfig, profile: Profile) -> AsyncIterator[Reading]:
    while True:
        state = await asyncio.to_thread(read_state, site.config.state_dir)
        yield _gateway_reading(state, dev, profile)


def _gateway_reading(state: GatewayState, dev: DeviceConfig, profile: Profile) -> Reading:
    values = state.device_values(dev.id)
    entry = state.data.get("devices", {}).get(dev.id) or {}
    error = ""
    if not state.running:
        error = f"gateway stopped (status {state.age_s:.0f} s old)"
    elif values is None:
        error = "the running gateway does not poll this device (restart or reload it)"
    elif entry.get("quality") == "comm_error":
        error = f"comm_error: {entry.get('last_error', '')}"
    ts = state.data.get("ts")
    return Reading(
        dev.unit,
        profile,
        values or {},
        error=error,
        source=GATEWAY,
        device=dev.id,
        ts=float(ts) if isinstance(ts, int | float) else 0.0,
    )


def _gateway_running(site: Site) -> bool:
    try:
        return read_state(site.config.state_dir).running
    except GatewayNotRunningError:
        return False
