"""Fixtures: a small field built in code, served in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from firmware_sim import BusConfig, DeviceConfig, SimConfig, SimulatorSet, Transport


def field() -> SimConfig:
    """One RTU bus, one TCP gateway, one ASCII line; every type."""
    return SimConfig(
        buses=[
            BusConfig(name="bus-1", transport=Transport.RTU, baud=9600),
            BusConfig(name="gw-1", transport=Transport.TCP),
            BusConfig(name="line-1", transport=Transport.ASCII, baud=9600),
        ],
        devices=[
            DeviceConfig(id="smk-0001", type="smoke", transport=Transport.RTU, bus="bus-1", unit=1),
            DeviceConfig(id="eb-0001", type="ebike", transport=Transport.RTU, bus="bus-1", unit=2),
            DeviceConfig(id="mh-0001", type="manhole", transport=Transport.TCP, bus="gw-1", unit=3),
            DeviceConfig(id="fl-0001", type="flood", transport=Transport.TCP, bus="gw-1", unit=4),
            DeviceConfig(
                id="smk-0101", type="smoke", transport=Transport.ASCII, bus="line-1", unit=7
            ),
        ],
    )


@pytest.fixture
async def sims() -> AsyncIterator[SimulatorSet]:
    async with SimulatorSet.from_config(field()) as s:
        yield s


@pytest.fixture
def address(sims: SimulatorSet) -> Callable[[str], str]:
    """Where a bus of the running field is reached."""

    def lookup(bus: str) -> str:
        return next(e.address for e in sims.endpoints() if e.bus == bus)

    return lookup
