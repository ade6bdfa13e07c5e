"""The brigade's live stream: its ``brigade_messages`` rows as Server-Sent Events, in order.

Each event's id is the row's ``seq``; a client that reconnects with ``Last-Event-ID`` (or
``?after=``) gets every row after it, so it misses nothing and repeats nothing. The stream
wakes when the alarm desk commits (``Bell.ring`` is one of its ``after_commit`` callbacks)
and reads again at least every ``IDLE_READ_S`` as a safety net.

``seq`` is global (all brigades), so the stream walks the global order and keeps only its own
brigade's rows. With PostgreSQL a sequence value is taken when a row is inserted but becomes
visible only when its transaction commits, so seq 11 can be visible while 10 is still in
flight: moving the cursor past 11 would lose 10 for good. A hole in the order is therefore
waited for up to ``GAP_WAIT_S`` before the cursor passes it (a rolled-back transaction's
value never appears). A step whose transaction commits later still than that misses this
connection (the lifecycle's transactions are short; the webhook, the list and a replay with
``?after=`` still have it). SQLite has one writer at a time, so its holes only come from
rows that were deleted, and cost one wait per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.brigade.feed import brigade_messages

GAP_WAIT_S = 2.0
IDLE_READ_S = 5.0
BATCH = 500


class Bell:
    """Wakes every stream waiting on any event loop (the desk may ring from another)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def ring(self) -> None:
        with self._lock:
            waiting = list(self._waiting)
        for loop, event in waiting:
            with contextlib.suppress(RuntimeError):  # that loop closed: nobody waits there
                loop.call_soon_threadsafe(event.set)

    @contextlib.contextmanager
    def listening(self) -> Iterator[asyncio.Event]:
        """An event set by the next ring: enter before reading, so no ring is missed."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiting.add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._waiting.discard(entry)


@dataclass(frozen=True, slots=True)
class Message:
    """One row of the stream, as the brigade gets it."""

    seq: int
    step: str
    data: str  # JSON: the message id, alarm id, step and the facts of that moment


@dataclass
class Cursor:
    """Where a stream stands in the global ``seq`` order, and the holes it is waiting out."""

    after: int
    holes: dict[int, float] = field(default_factory=dict)  # seq -> first seen missing

    def advance(self, seqs: list[int], now: float) -> int:
        """How far the rows *seqs* (ascending, all > ``after``) may be taken; moves past a
        hole (every seq missing below a row, as one) once it is ``GAP_WAIT_S`` old. Returns
        the new ``after``; rows above it wait."""
        for s in seqs:
            if s > self.after + 1:
                hole = self.after + 1  # after+1 .. s-1 are missing
                since = self.holes.setdefault(hole, now)
                if now - since < GAP_WAIT_S:
                    return self.after
                del self.holes[hole]
            self.after = s
        self.holes = {h: t for h, t in self.holes.items() if h > self.after}
        return self.after


def read_after(
    db: Engine, brigade_id: str, cursor: Cursor, now: float
) -> tuple[list[Message], bool]:
    """The brigade's rows that the cursor may pass now, and whether it moved (blocking: run
    it in a thread)."""
    before = cursor.after
    m = brigade_messages
    own_facts = sa.case((m.c.brigade_id == brigade_id, m.c.facts), else_=None)  # only ours
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(m.c.seq, m.c.brigade_id, m.c.alarm_id, m.c.step, m.c.message_id,
                      own_facts.label("facts"), m.c.created_at)
            .where(m.c.seq > cursor.after).order_by(m.c.seq).limit(BATCH)
        ).all()  # fmt: skip
    upto = cursor.advance([r.seq for r in rows], now)
    own = [_message(r) for r in rows if r.seq <= upto and r.brigade_id == brigade_id]
    return own, upto != before


def _message(r: Any) -> Message:
    data = {
        "seq": r.seq, "message_id": r.message_id, "alarm_id": r.alarm_id, "step": r.step,
        "at": r.created_at, "alarm": json.loads(str(r.facts)),
    }  # fmt: skip
    return Message(r.seq, r.step, json.dumps(data, ensure_ascii=False))


def latest_seq(db: Engine) -> int:
    with db.connect() as conn:
        got = conn.execute(sa.select(sa.func.max(brigade_messages.c.seq))).scalar()
    return int(got or 0)


async def messages(
    db: Engine, bell: Bell, brigade_id: str, after: int, *,
    allowed: Callable[[], Awaitable[bool]] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Message]:  # fmt: skip
    """The brigade's messages after *after*, until the caller stops iterating or *allowed*
    (asked again every ``IDLE_READ_S``: a key revoked or expired meanwhile) says no more."""
    cursor = Cursor(after)
    checked = clock()
    while True:
        if allowed is not None and clock() - checked >= IDLE_READ_S:
            if not await allowed():
                return
            checked = clock()
        with bell.listening() as rung:
            got, moved = await asyncio.to_thread(read_after, db, brigade_id, cursor, clock())
            for message in got:
                yield message
            if moved:
                continue
            wait = GAP_WAIT_S / 4 if cursor.holes else IDLE_READ_S
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await rung.wait()
