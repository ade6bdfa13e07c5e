"""Live board updates: the desk's after-commit hook bumps a version; each console's
Server-Sent Events stream wakes on it and gets the board rendered once per version and
locale, however many consoles are connected.

A stream lasts at most ``STREAM_MAX_S`` and the browser reconnects at once (EventSource),
so a stopping server never waits long for a console to hang up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from sse_starlette import ServerSentEvent

MIN_GAP_S = 0.2  # at most five boards a second per console, however fast alarms change
STREAM_MAX_S = 30.0  # a stream's lifetime: the browser reconnects after it
RETRY_MS = 100  # how soon the browser reconnects


class BoardFeed:
    """Versions of the board and the board rendered for each (the latest only)."""

    def __init__(self, render: Callable[[str], str]) -> None:
        self._render = render  # locale -> HTML of the board's rows (blocking: runs in a thread)
        self.version = 0
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()
        # locale -> (version, rows HTML, the SSE event encoded once for every console)
        self._cache: dict[str, tuple[int, str, bytes]] = {}
        self.renders = 0  # how often the board was rendered (the benchmark reads it)

    def kick(self) -> None:
        """Something committed: the board may have changed (call on the loop; never blocks)."""
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self, seen: int) -> int:
        """Until the version differs from *seen*; returns the new version."""
        while self.version == seen:
            await self._changed.wait()
        return self.version

    async def board(self, locale: str) -> tuple[int, str]:
        """(version, rows HTML) of the latest board, rendered once per version and locale."""
        version, html, _ = await self._latest(locale)
        return version, html

    async def _latest(self, locale: str) -> tuple[int, str, bytes]:
        async with self._lock:
            version = self.version
            cached = self._cache.get(locale)
            if cached is not None and cached[0] == version:
                return cached
            html = await asyncio.to_thread(self._render, locale)
            self.renders += 1
            event = ServerSentEvent(data=html, event="board", id=str(version)).encode()
            self._cache[locale] = (version, html, event)
            return version, html, event

    async def stream(self, locale: str, seen: int) -> AsyncIterator[ServerSentEvent | bytes]:
        """Board events from version *seen* on, for up to STREAM_MAX_S."""
        yield ServerSentEvent(comment="hello", retry=RETRY_MS)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STREAM_MAX_S):
                while True:
                    await self.wait(seen)
                    seen, _, event = await self._latest(locale)
                    yield event
                    # a storm of changes coalesces into one board per gap, not one per change
                    await asyncio.sleep(MIN_GAP_S)
