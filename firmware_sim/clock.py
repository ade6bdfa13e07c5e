"""Simulator clocks: wall time scaled by a speed factor, or a manual clock for tests.

Clock time is in unix seconds (the e-bike's detection time is read from it). Line pacing does
not use these clocks: a baud rate is wall time whatever the speed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """What the devices and the timeline need from a clock."""

    def now(self) -> float:
        """Seconds on the simulator clock."""
        ...

    async def sleep_until(self, t: float) -> None:
        """Return once ``now() >= t``."""
        ...


class ScaledClock:
    """Wall time from *start*, running *speed* times faster."""

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._start = time.time() if start is None else start
        self._mono = time.monotonic()

    def now(self) -> float:
        """Scaled seconds since creation, added to the start time."""
        return self._start + (time.monotonic() - self._mono) * self.speed

    async def sleep_until(self, t: float) -> None:
        """Sleep the wall time that brings the scaled clock to *t*."""
        left = t - self.now()
        if left > 0:
            await asyncio.sleep(left / self.speed)


class ManualClock:
    """A clock that only moves when told to; sleepers wake when it passes their time."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        """The time last set."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move forward and wake every sleeper whose time has come."""
        self._now += seconds
        due = [fut for t, fut in self._sleepers if t <= self._now]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self._now]
        for fut in due:
            if not fut.done():
                fut.set_result(None)

    async def sleep_until(self, t: float) -> None:
        """Wait for ``advance`` to reach *t*."""
        if t <= self._now:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((t, fut))
        await fut
