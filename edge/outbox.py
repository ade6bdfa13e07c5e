"""Durable store-and-forward outbox (SQLite).

Every sequenced message is written here before it is published and deleted only after the
broker's PUBACK. The per-gateway sequence counter lives in the same database and is
advanced in the same transaction as the rows it numbers, so it never goes backwards, even
after kill -9.

Bound and policy: when an append would exceed ``max_messages`` the oldest *telemetry* rows
are deleted (events and drop records never are) and a drop record naming their sequence
numbers is appended, so a consumer can tell a policy drop from a loss.

The methods are blocking (SQLite); async callers run them through ``asyncio.to_thread``.
A lock makes one connection safe across those threads.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wire import MAX_DROP_RANGES

logger = logging.getLogger(__name__)

PRIO_EVENT = 0  # events and drop records: drained first, never dropped
PRIO_DATA = 1  # telemetry: drained after events, dropped oldest-first when full

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    prio INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_prio_seq ON outbox (prio, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Pending:
    """A message to append: its payload is built once its sequence number is known."""

    prio: int
    topic: str
    build: Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    prio: int
    topic: str
    payload: bytes


DropRecordBuilder = Callable[[int, list[tuple[int, int]]], tuple[str, bytes]]


class Outbox:
    """The SQLite-backed queue; see the module docstring for the guarantees."""

    def __init__(
        self,
        path: Path,
        *,
        max_messages: int,
        drop_record: DropRecordBuilder,
        fsync: bool = False,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL survives a killed process (the WAL is in the OS); FULL also survives power loss.
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._max = max_messages
        self._drop_record = drop_record
        stored = self._db.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
        highest = self._db.execute("SELECT MAX(seq) FROM outbox").fetchone()[0]
        self._last_seq: int = max(stored[0] if stored else 0, highest or 0)
        self._depth: int = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        self.dropped_total = 0

    @property
    def depth(self) -> int:
        """Messages stored and not yet acknowledged by the broker."""
        return self._depth

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(self, items: Sequence[Pending]) -> list[int]:
        """Number and store *items* in one transaction; return their sequence numbers."""
        if not items:
            return []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                dropped = self._make_room(len(items))
                seqs, rows = self._number(items)
                for start in range(0, len(dropped), MAX_DROP_RANGES):
                    part = dropped[start : start + MAX_DROP_RANGES]
                    topic, payload = self._drop_record(self._last_seq + 1, part)
                    self._last_seq += 1
                    rows.append((self._last_seq, PRIO_EVENT, topic, payload))
                self._db.executemany("INSERT INTO outbox VALUES (?, ?, ?, ?)", rows)
                self._db.execute(
                    "INSERT INTO meta VALUES ('last_seq', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (self._last_seq,),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._depth += len(rows)
        return seqs

    def _number(
        self, items: Sequence[Pending]
    ) -> tuple[list[int], list[tuple[int, int, str, bytes]]]:
        seqs: list[int] = []
        rows: list[tuple[int, int, str, bytes]] = []
        seq = self._last_seq
        for item in items:
            seq += 1
            seqs.append(seq)
            rows.append((seq, item.prio, item.topic, item.build(seq)))
        self._last_seq = seq
        return seqs, rows

    def _make_room(self, incoming: int) -> list[tuple[int, int]]:
        """Delete the oldest telemetry so that *incoming* (+1 drop record) fits; return ranges."""
        excess = self._depth + incoming + 1 - self._max
        if excess <= 0:
            return []
        # Drop a chunk (1% of the bound) so a full outbox does not emit a record per message.
        chunk = max(excess, self._max // 100)
        seqs = [
            r[0]
            for r in self._db.execute(
                "SELECT seq FROM outbox WHERE prio=? ORDER BY seq LIMIT ?", (PRIO_DATA, chunk)
            )
        ]
        if not seqs:
            logger.warning("outbox over its bound of %d with events only; keeping them", self._max)
            return []
        self._db.execute("DELETE FROM outbox WHERE prio=? AND seq<=?", (PRIO_DATA, seqs[-1]))
        self._depth -= len(seqs)
        self.dropped_total += len(seqs)
        logger.warning(
            "outbox full: dropped %d telemetry messages (seq %d..%d)", len(seqs), seqs[0], seqs[-1]
        )
        return _ranges(seqs)

    def fetch(self, prio: int, after_seq: int, limit: int) -> list[Row]:
        """Up to *limit* stored rows of one priority with seq > *after_seq*, in order."""
        with self._lock:
            cur = self._db.execute(
                "SELECT seq, prio, topic, payload FROM outbox"
                " WHERE prio=? AND seq>? ORDER BY seq LIMIT ?",
                (prio, after_seq, limit),
            )
            return [Row(*r) for r in cur]

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete acknowledged rows; return how many were still stored."""
        params = [(s,) for s in seqs]
        if not params:
            return 0
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM outbox WHERE seq=?", params)
            self._db.execute("COMMIT")
            removed = self._db.total_changes - before
            self._depth -= removed
        return removed


def _ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Collapse sorted sequence numbers into inclusive ranges."""
    out: list[tuple[int, int]] = []
    for s in seqs:
        if out and out[-1][1] == s - 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out
