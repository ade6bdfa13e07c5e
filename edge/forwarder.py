"""Drains the outbox into the uplink: events first, then telemetry, each in sequence order.

A bounded window of publishes awaits PUBACK at once (paho loses messages silently past
65,535 in flight). A row leaves the outbox only when acknowledged; on
a new connection the window is forgotten and unacknowledged rows are sent again (the cloud
drops the duplicates by sequence number).
"""

from __future__ import annotations

import asyncio
import logging
import time

from edge.aio import wait_first
from edge.outbox import PRIO_DATA, PRIO_EVENT, Outbox, Row
from edge.uplink import Uplink

logger = logging.getLogger(__name__)

FETCH_BATCH = 500


class Forwarder:
    """The task that moves rows from the outbox to the broker."""

    def __init__(self, outbox: Outbox, uplink: Uplink, max_inflight: int) -> None:
        self._outbox = outbox
        self._uplink = uplink
        self._window = max_inflight
        self._inflight: dict[int, int] = {}  # mid -> seq, for the current generation
        self._cursor = {PRIO_EVENT: 0, PRIO_DATA: 0}
        self._generation = -1
        self._space = asyncio.Event()
        self.appended = asyncio.Event()  # set by whoever appends to the outbox
        self.published = 0
        self.acked = 0
        self.last_ack_ts: float | None = None
        self.last_publish_ts: float | None = None

    async def run(self) -> None:
        """Publish forever; runs beside the ack task."""
        while True:
            await self._uplink.connected.wait()
            if self._uplink.generation != self._generation:
                self._reset()
            if len(self._inflight) >= self._window:
                self._space.clear()
                await self._wait_any(self._space)
                continue
            rows = await self._next_rows(self._window - len(self._inflight))
            if not rows:
                self.appended.clear()
                await self._wait_any(self.appended)
                continue
            self._send(rows)

    async def run_acks(self) -> None:
        """Collect PUBACKs and delete their rows in batches."""
        while True:
            await self._uplink.ack_ready.wait()
            self._uplink.ack_ready.clear()
            done: list[int] = []
            acks = self._uplink.acks
            while acks:
                generation, mid = acks.popleft()
                seq = self._inflight.pop(mid, None) if generation == self._generation else None
                if seq is not None:
                    done.append(seq)
            if done:
                await asyncio.to_thread(self._outbox.ack, done)
                self.acked += len(done)
                self.last_ack_ts = time.time()
                self._space.set()

    def _reset(self) -> None:
        self._generation = self._uplink.generation
        if self._inflight:
            logger.info(
                "forwarder: new connection, re-sending %d unacknowledged", len(self._inflight)
            )
        self._inflight.clear()
        self._cursor = {PRIO_EVENT: 0, PRIO_DATA: 0}

    async def _wait_any(self, event: asyncio.Event) -> None:
        """Wait for *event* or a lost connection, whichever comes first."""
        await wait_first(event, self._uplink.disconnected)

    async def _next_rows(self, room: int) -> list[Row]:
        limit = min(room, FETCH_BATCH)
        for prio in (PRIO_EVENT, PRIO_DATA):
            rows = await asyncio.to_thread(self._outbox.fetch, prio, self._cursor[prio], limit)
            if rows:
                return rows
        return []

    def _send(self, rows: list[Row]) -> None:
        for row in rows:
            mid = self._uplink.publish(row.topic, row.payload, qos=1)
            if mid is None:
                return  # connection gone; the next generation starts from the outbox again
            self._inflight[mid] = row.seq
            self._cursor[row.prio] = row.seq
            self.published += 1
        self.last_publish_ts = time.time()
