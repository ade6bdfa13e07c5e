"""The part both sinks share: the bounded buffer, the writer task's life, flush, and logging
"unavailable" / "back" once per outage."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, TypeVar

from cloud.sinks.backoff import Backoff
from cloud.sinks.buffer import PointBuffer
from cloud.sinks.point import Point, SinkStats

logger = logging.getLogger(__name__)

T = TypeVar("T")


class BufferedSink(ABC, Generic[T]):
    """A sink whose writer task drains a bounded buffer; T is what the buffer holds."""

    def __init__(self, name: str, max_buffered: int) -> None:
        self.name = name
        self.stats = SinkStats()
        self._buffer: PointBuffer[T] = PointBuffer(name, max_buffered, self.stats)
        self._writer: asyncio.Task[None] | None = None
        self._flushing = 0
        self._available = True
        self._backoff = Backoff()

    @property
    def available(self) -> bool:
        """False while the storage is failing (points are being buffered)."""
        return self._available

    @abstractmethod
    def submit(self, points: Sequence[Point]) -> None:
        """Queue *points*; never blocks, never raises for storage trouble (call on the loop)."""

    @abstractmethod
    async def _write_loop(self) -> None:
        """Drain the buffer until cancelled."""

    async def run(self) -> None:
        """The background writer; runs until cancelled (put it in the cloud's TaskGroup)."""
        if self._writer is not None:
            raise RuntimeError(f"{self.name}: writer already running")
        self._writer = asyncio.current_task()
        try:
            await self._write_loop()
        finally:
            self._writer = None

    async def flush(self, timeout_s: float) -> bool:
        """Write everything buffered now; True if nothing is left buffered at the end.

        Works whether or not run() is running (at shutdown it has usually been cancelled).
        """
        self._flushing += 1
        self._buffer.nudge()
        helper = None
        if self._writer is None:
            helper = asyncio.create_task(self.run(), name=f"{self.name}.flush")
        try:
            return await self._buffer.idle(timeout_s)
        finally:
            self._flushing -= 1
            if helper is not None:
                helper.cancel()
                await asyncio.wait([helper])

    def _unavailable(self, err: BaseException) -> None:
        self.stats.errors += 1
        self.stats.last_error = f"{type(err).__name__}: {err}"
        if self._available:
            self._available = False
            logger.warning(
                "%s: unavailable (%s); buffering up to the bound", self.name, self.stats.last_error
            )

    def _back(self) -> None:
        self._backoff.reset()
        if not self._available:
            self._available = True
            logger.info("%s: back; %d points buffered", self.name, self.stats.buffered)
