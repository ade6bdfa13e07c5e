"""What every bus driver offers: one transaction at a time, our own retries, exact counters."""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Self, TypeVar

from edge.decode import Decoded
from edge.errors import BusError, DeviceError, EdgeError, ExceptionResponse
from edge.profile import Profile

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

COUNTERS = ("transactions", "ok", "timeouts", "frame_errors", "exceptions", "retries", "bus_errors")
_COUNTER_OF_KIND = {
    "timeout": "timeouts",
    "frame_error": "frame_errors",
    "exception": "exceptions",
    "device_error": "frame_errors",
}
# Exception codes worth asking again: 06 server busy, 0B gateway target failed to respond.
RETRYABLE_EXCEPTIONS = frozenset({0x06, 0x0B})


class ProtocolMismatchError(EdgeError):
    """The request does not fit the bus: a Modbus profile on an ASCII line, or vice versa."""


class Bus(abc.ABC):
    """A field bus; use ``async with open_bus(cfg) as bus``.

    Each attempt is one transaction under the bus lock, so other devices' polls interleave
    between retries. Timeouts and frame errors are retried; exception responses are not
    (the device answered, asking again gives the same answer), except busy / gateway-target.
    """

    def __init__(self, bus_id: str) -> None:
        self.id = bus_id
        self._lock = asyncio.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)

    @property
    def counters(self) -> Mapping[str, int]:
        """Live read-only counters: transactions, ok, timeouts, frame_errors, exceptions, …"""
        return MappingProxyType(self._counts)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def open(self) -> None:
        """Open the port or connection; BusError if it is unusable."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the port or connection."""

    @abc.abstractmethod
    async def read_device(
        self, unit: int, profile: Profile, timeout_s: float = 0.5, retries: int = 1
    ) -> Decoded:
        """Read and decode one poll of a device."""

    async def read_registers(
        self, unit: int, address: int, count: int, timeout_s: float = 0.5, retries: int = 0
    ) -> list[int]:
        """Raw FC03 read, for scan and probe."""
        raise ProtocolMismatchError(f"bus {self.id}: no Modbus registers on this bus")

    async def write_register(
        self, unit: int, address: int, value: int, timeout_s: float = 0.5, retries: int = 0
    ) -> None:
        """FC06 write of one holding register."""
        raise ProtocolMismatchError(f"bus {self.id}: no Modbus registers on this bus")

    async def _transact(
        self, unit: int, what: str, attempt: Callable[[], Awaitable[_T]], retries: int
    ) -> _T:
        """Run ``attempt`` under the bus lock, retrying timeouts and frame errors."""
        for n in range(retries + 1):
            try:
                async with self._lock:
                    self._counts["transactions"] += 1
                    result = await attempt()
            except BusError:
                self._counts["bus_errors"] += 1
                raise
            except DeviceError as err:
                self._counts[_COUNTER_OF_KIND.get(err.kind, "frame_errors")] += 1
                logger.debug(
                    "bus %s unit %d: %s failed (%s: %s)", self.id, unit, what, err.kind, err
                )
                if n == retries or not _retryable(err):
                    raise
                self._counts["retries"] += 1
            else:
                self._counts["ok"] += 1
                return result
        raise AssertionError("unreachable")  # pragma: no cover


def _retryable(err: DeviceError) -> bool:
    return not isinstance(err, ExceptionResponse) or err.code in RETRYABLE_EXCEPTIONS


class ModbusBus(Bus):
    """A Modbus bus (RTU or TCP): subclasses provide the two single-attempt transactions."""

    async def read_device(
        self, unit: int, profile: Profile, timeout_s: float = 0.5, retries: int = 1
    ) -> Decoded:
        """Read the profile's read plan (one FC03 per block) and decode it."""
        if profile.protocol != "modbus":
            raise ProtocolMismatchError(f"bus {self.id}: profile {profile.name} is not Modbus")
        blocks = [
            await self.read_registers(unit, b.address, b.count, timeout_s, retries)
            for b in profile.read_plan()
        ]
        return profile.decode_registers(blocks)

    async def read_registers(
        self, unit: int, address: int, count: int, timeout_s: float = 0.5, retries: int = 0
    ) -> list[int]:
        """Raw FC03 read of ``count`` holding registers from ``address``."""
        return await self._transact(
            unit,
            f"read {count}@{address}",
            lambda: self._read_holding(unit, address, count, timeout_s),
            retries,
        )

    async def write_register(
        self, unit: int, address: int, value: int, timeout_s: float = 0.5, retries: int = 0
    ) -> None:
        """FC06 write of one holding register."""
        await self._transact(
            unit,
            f"write {value}@{address}",
            lambda: self._write_single(unit, address, value, timeout_s),
            retries,
        )

    @abc.abstractmethod
    async def _read_holding(
        self, unit: int, address: int, count: int, timeout_s: float
    ) -> list[int]:
        """One FC03 attempt."""

    @abc.abstractmethod
    async def _write_single(self, unit: int, address: int, value: int, timeout_s: float) -> None:
        """One FC06 attempt."""
