"""The embedded default sink: SQLite with bounded retention, for the demo and recent history."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import msgspec

from cloud.sinks.base import BufferedSink
from cloud.sinks.point import FieldValue, Point
from cloud.sinks.sqlite_table import ReadingStore

logger = logging.getLogger(__name__)

# Worth retrying: the file is locked, the disk is full, an I/O error. Anything else about a
# batch (a value msgspec cannot encode, a type SQLite cannot bind) would fail forever.
RETRYABLE = (sqlite3.OperationalError,)
POISON = (sqlite3.Error, TypeError, ValueError, msgspec.EncodeError)


class SqliteSink(BufferedSink[Point]):
    """Readings into a local SQLite file; writes run in a worker thread, batch by batch.

    While a batch is being written, submits keep queueing, so batches grow with the load
    (up to batch_size) and latency stays low when the load is light.
    """

    def __init__(
        self,
        path: Path,
        *,
        retention_s: float = 7 * 86400,
        max_rows: int = 5_000_000,
        max_buffered: int = 500_000,
        batch_size: int = 10_000,
    ) -> None:
        super().__init__(f"sqlite sink {path}", max_buffered)
        self._store = ReadingStore(path, retention_s=retention_s, max_rows=max_rows)
        self._batch_size = batch_size

    @property
    def rows(self) -> int:
        """Rows stored now."""
        return self._store.rows

    def submit(self, points: Sequence[Point]) -> None:
        """Queue *points*; never blocks, never raises for storage trouble (call on the loop)."""
        self._buffer.put(points)

    def recent(
        self,
        device: str,
        since: float,
        until: float | None = None,
        fields: Sequence[str] | None = None,
    ) -> list[tuple[float, dict[str, FieldValue]]]:
        """Readings of *device* with since <= ts < until, oldest first (blocking; thread-safe).

        Only written readings are seen, not those still buffered.
        """
        return self._store.recent(device, since, until, fields)

    async def _write_loop(self) -> None:
        while True:
            await self._buffer.wait(1)
            if not self._buffer.queued:
                continue  # nudged by flush with nothing to do
            batch = self._buffer.take(self._batch_size)
            if not await self._write(batch):
                await asyncio.sleep(self._backoff.next_delay())

    async def _write(self, batch: list[Point]) -> bool:
        write = asyncio.ensure_future(asyncio.to_thread(self._store.insert, batch))
        try:
            await asyncio.wait([write])  # never raises the write's error; settled below
        except asyncio.CancelledError:
            # The thread commits or not regardless; wait for it so the counts stay true.
            await asyncio.wait([write])
            self._settle(write, batch)
            raise
        return self._settle(write, batch)

    def _settle(self, write: asyncio.Future[None], batch: list[Point]) -> bool:
        err = write.exception()
        if err is None:
            self._buffer.done(len(batch))
            self._back()
            return True
        if isinstance(err, RETRYABLE):
            self._buffer.put_back(batch)
            self._unavailable(err)
            return False
        if isinstance(err, POISON):
            self._buffer.lose(len(batch))
            self.stats.errors += 1
            self.stats.last_error = f"{type(err).__name__}: {err}"
            logger.error(
                "%s: dropped a batch of %d points it cannot store (first device %s): %s",
                self.name,
                len(batch),
                batch[0].device,
                err,
            )
            return True
        raise err

    async def aclose(self) -> None:
        """Close the file; points still buffered are lost (call flush first)."""
        if self.stats.buffered:
            logger.warning("%s: closing with %d points unwritten", self.name, self.stats.buffered)
        await asyncio.to_thread(self._store.close)
