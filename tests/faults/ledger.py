"""What the loop did, counted from the outside: alarms raised, notifications that reached people.

Alarms come from the cloud's append-only history (one ``raise`` per alarm). Notifications
come from where people are reached: the Twilio stand-in's accepted messages (one per
idempotency token, as Twilio itself deduplicates) and the audit's deliveries on any other
channel (a fallback reaches the person too). A message is tied to its alarms and worker by
its outbox row, whose id is the token; a summary row names every alarm it carries.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.lifecycle.model import OutboxState
from cloud.lifecycle.rule_alarms import list_events
from cloud.lifecycle.tables import lifecycle_alarms, outbox
from rigs.cloud import WORKERS

# The rig's lifecycle (rigs.cloud.LIFECYCLE) climbs next nearest, next nearest, supervisor:
# in grid-1 that is both workers and their supervisor, each once, whatever the ranking.
PAGED = ("w-near", "w-far", "sup-1")
PHONES = {row["id"]: row["phone"] for row in csv.DictReader(io.StringIO(WORKERS))}
UNSETTLED = [OutboxState.PENDING, OutboxState.SENDING, OutboxState.HELD]


@dataclass
class Count:
    """Expected, seen (of the expected), doubled (extra copies), and what did not fit."""

    expected: int = 0
    seen: int = 0
    doubled: int = 0
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.expected} / {self.seen} / {self.doubled}"


def raised(db: Engine) -> dict[str, list[int]]:
    """Alarm key -> the ids of every alarm raised under it."""
    out: dict[str, list[int]] = {}
    for e in list_events(db):
        if e["kind"] == "raise":
            out.setdefault(e["key"], []).append(e["alarm_id"])
    return out


def count_alarms(db: Engine, expected: set[str]) -> Count:
    by_key = raised(db)
    c = Count(expected=len(expected))
    c.seen = sum(1 for k in expected if by_key.get(k))
    c.doubled = sum(len(ids) - 1 for k, ids in by_key.items() if k in expected and len(ids) > 1)
    missing = sorted(k for k in expected if not by_key.get(k))
    extra = sorted(k for k in by_key if k not in expected)
    if missing:
        c.problems.append(f"field events that raised no alarm: {missing}")
    if extra:
        c.problems.append(f"alarms no field event asked for: {extra}")
    if c.doubled:
        c.problems.append(
            f"alarms raised twice: { {k: v for k, v in by_key.items() if len(v) > 1} }"
        )
    return c


@dataclass
class Deliveries:
    """(alarm id, worker) -> how many times it reached the person, and by which channel."""

    per_pair: Counter[tuple[int, str]] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def deliveries(db: Engine, sms: list[dict[str, Any]]) -> Deliveries:
    """Every message that reached someone: SMS at the stand-in, other channels from the audit."""
    with db.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(outbox.c.id, outbox.c.worker_id,
                                                        outbox.c.alarm_ids))}  # fmt: skip
    d = Deliveries()
    for m in sms:
        row = rows.get(m["idempotency_token"])
        if row is None:
            d.problems.append(f"an SMS no outbox row sent: {m['idempotency_token']} to {m['to']}")
            continue
        if m["to"] != PHONES.get(row.worker_id):
            d.problems.append(f"{row.id} for {row.worker_id} went to {m['to']}")
        d.channels["sms"] += 1
        for alarm_id in json.loads(row.alarm_ids):
            d.per_pair[alarm_id, row.worker_id] += 1
    for e in list_events(db):
        detail = json.loads(e["detail"] or "{}")
        if e["kind"] == "delivered" and detail.get("channel") != "sms":
            d.channels[detail["channel"]] += 1
            d.per_pair[e["alarm_id"], detail["worker"]] += 1
    return d


def count_notifications(db: Engine, alarm_ids: list[int], sms: list[dict[str, Any]]) -> Count:
    d = deliveries(db, sms)
    expected = {(a, w) for a in alarm_ids for w in PAGED}
    c = Count(expected=len(expected), problems=list(d.problems))
    c.seen = len(expected & d.per_pair.keys())
    c.doubled = sum(n - 1 for n in d.per_pair.values() if n > 1)
    if missing := sorted(expected - d.per_pair.keys()):
        c.problems.append(f"steps that reached nobody: {missing}")
    if extra := sorted(d.per_pair.keys() - expected):
        c.problems.append(f"notifications no step asked for: {extra}")
    if c.doubled:
        c.problems.append(f"doubled: { {p: n for p, n in d.per_pair.items() if n > 1} }")
    return c


def channel_counts(db: Engine, sms: list[dict[str, Any]]) -> str:
    counts = deliveries(db, sms).channels
    return ", ".join(f"{ch} {n}" for ch, n in sorted(counts.items())) or "none"


def settled(db: Engine, alarm_ids: list[int]) -> bool:
    """Nothing left to send: no outbox row waiting and every chain has run its last step."""
    with db.connect() as conn:
        waiting = conn.execute(
            sa.select(sa.func.count()).where(outbox.c.state.in_(UNSETTLED))
        ).scalar()
        chains = conn.execute(
            sa.select(sa.func.count()).where(
                lifecycle_alarms.c.alarm_id.in_(alarm_ids),
                lifecycle_alarms.c.next_index.is_(None),
            )
        ).scalar()
    return waiting == 0 and chains == len(alarm_ids)
