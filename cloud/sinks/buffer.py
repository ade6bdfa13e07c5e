"""A bounded FIFO of points waiting to be written, with in-flight accounting.

Used from the event loop thread only (like asyncio's own queues). When full, the oldest
queued points are dropped and counted: for alarms history the newest readings matter most.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Generic, TypeVar

from cloud.sinks.point import SinkStats

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PointBuffer(Generic[T]):
    """Queued points (at most max_items) plus points handed to a writer and not yet settled."""

    def __init__(self, name: str, max_items: int, stats: SinkStats) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self._name = name
        self._max = max_items
        self._queue: deque[T] = deque()
        self._in_flight = 0
        self._stats = stats
        self._ready = asyncio.Event()
        self._wake_at = 1
        self._nudged = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._overflowing = False

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def put(self, items: Sequence[T]) -> None:
        """Append *items*; beyond the bound drop the oldest queued ones and count them."""
        self._stats.submitted += len(items)
        self._queue.extend(items)
        self._trim()
        self._changed()

    def take(self, n: int) -> list[T]:
        """Move up to *n* of the oldest queued items to in flight and return them."""
        if len(self._queue) <= n:
            batch = list(self._queue)
            self._queue.clear()
        else:
            popleft = self._queue.popleft
            batch = [popleft() for _ in range(n)]
        self._in_flight += len(batch)
        self._changed()
        return batch

    def put_back(self, items: Sequence[T]) -> None:
        """Return in-flight items to the front (they are the oldest); the bound still holds."""
        self._in_flight -= len(items)
        self._queue.extendleft(reversed(items))
        self._trim()
        self._changed()

    def done(self, n: int) -> None:
        """*n* in-flight points were written."""
        self._in_flight -= n
        self._stats.written += n
        self._stats.last_write_ts = time.time()
        self._changed()

    def lose(self, n: int) -> None:
        """*n* in-flight points will never be written (malformed, or the sink closed)."""
        self._in_flight -= n
        self._stats.dropped += n
        self._changed()

    async def wait(self, n: int, timeout_s: float | None = None) -> bool:
        """Wait until at least *n* items are queued (one waiter at a time) or nudge() is called.

        False on timeout.
        """
        self._wake_at = n
        try:
            async with asyncio.timeout(timeout_s):
                while len(self._queue) < n and not self._nudged:
                    self._ready.clear()
                    await self._ready.wait()
        except TimeoutError:
            return False
        finally:
            self._wake_at = 1
            self._nudged = False
        return True

    def nudge(self) -> None:
        """Make the current (or next) wait() return now: someone wants a flush."""
        self._nudged = True
        self._ready.set()

    async def idle(self, timeout_s: float) -> bool:
        """Wait until nothing is queued or in flight; False on timeout."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def _trim(self) -> None:
        excess = len(self._queue) - self._max
        if excess <= 0:
            return
        popleft = self._queue.popleft
        for _ in range(excess):
            popleft()
        self._stats.dropped += excess
        if not self._overflowing:
            self._overflowing = True
            logger.warning(
                "%s: buffer full (%d points), dropping the oldest", self._name, self._max
            )

    def _changed(self) -> None:
        self._stats.buffered = len(self._queue) + self._in_flight
        if len(self._queue) >= self._wake_at:
            self._ready.set()
        if self._stats.buffered == 0:
            self._idle.set()
            if self._overflowing:
                self._overflowing = False
                logger.info("%s: buffer drained after overflow", self._name)
        else:
            self._idle.clear()
