"""Turns readings and events into sequenced wire messages in the outbox.

Pollers call ``data`` / ``event`` without waiting; one task commits whatever has gathered in
one SQLite transaction (natural batching: one commit per burst, not per message) and wakes
the forwarder.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from edge.outbox import PRIO_DATA, PRIO_EVENT, Outbox, Pending
from wire import DataMessage, DropRecord, EventMessage, Quality, encode
from wire.topics import data_topic, dropped_topic, event_topic

Value = float | int | bool
MAX_BATCH = 2000


class Emitter:
    """The single writer into the outbox."""

    def __init__(self, gateway_id: str, outbox: Outbox, appended: asyncio.Event) -> None:
        self._gw = gateway_id
        self._outbox = outbox
        self._appended = appended
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self.last_append_ts: float | None = None

    def data(
        self,
        device: str,
        ts: float,
        quality: Quality,
        values: Mapping[str, Value],
        invalid: tuple[str, ...] = (),
    ) -> None:
        gw, vals, inv = self._gw, dict(values), list(invalid)

        def build(seq: int) -> bytes:
            return encode(
                DataMessage(gw=gw, dev=device, seq=seq, ts=ts, q=quality, values=vals, invalid=inv)
            )

        self._queue.put_nowait(Pending(PRIO_DATA, data_topic(gw, device), build))

    def event(
        self,
        device: str,
        ts: float,
        name: str,
        active: bool | None,
        values: Mapping[str, Value],
    ) -> None:
        gw, vals = self._gw, dict(values)

        def build(seq: int) -> bytes:
            return encode(
                EventMessage(
                    gw=gw, dev=device, seq=seq, ts=ts, event=name, active=active, values=vals
                )
            )

        self._queue.put_nowait(Pending(PRIO_EVENT, event_topic(gw, device), build))

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            await asyncio.to_thread(self._outbox.append, batch)
            self.last_append_ts = time.time()
            self._appended.set()

    async def flush(self) -> None:
        """Commit what is queued now (used on shutdown)."""
        batch: list[Pending] = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            await asyncio.to_thread(self._outbox.append, batch)


def drop_record(gateway_id: str, seq: int, ranges: list[tuple[int, int]]) -> tuple[str, bytes]:
    """Build the drop record the outbox appends when its policy drops telemetry."""
    record = DropRecord(gw=gateway_id, seq=seq, ts=time.time(), ranges=ranges)
    return dropped_topic(gateway_id), encode(record)
