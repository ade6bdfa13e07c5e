"""What every simulated bus shares: a name, its units, a clock, counters and a lifetime."""

from __future__ import annotations

import abc
import asyncio
import enum
import logging
from collections.abc import Coroutine
from typing import Any

from firmware_sim.clock import Clock
from firmware_sim.device import Device
from firmware_sim.stats import BusStats

logger = logging.getLogger(__name__)


class Transport(enum.StrEnum):
    """How a bus reaches its clients."""

    RTU = "rtu"
    TCP = "tcp"
    ASCII = "ascii"


class Bus(abc.ABC):
    """One simulated bus with several units on it."""

    transport: Transport

    def __init__(self, name: str, clock: Clock) -> None:
        self.name = name
        self.clock = clock
        self.units: dict[int, Device] = {}
        self.stats = BusStats()
        self._task: asyncio.Task[None] | None = None

    def add(self, unit: int, device: Device) -> None:
        """Hang *device* on the bus at *unit*."""
        if unit in self.units:
            raise ValueError(f"{self.name}: unit {unit} is taken")
        self.units[unit] = device

    @property
    @abc.abstractmethod
    def address(self) -> str:
        """Where a client connects: a pty path or 127.0.0.1:PORT."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the endpoint and start serving."""

    async def aclose(self) -> None:
        """Stop serving and release the endpoint."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._task = asyncio.create_task(
            _guarded(self.name, coro), name=f"firmware_sim.{self.transport}[{self.name}]"
        )


async def _guarded(name: str, coro: Coroutine[Any, Any, None]) -> None:
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("bus %s: serving task failed", name)
        raise
