"""Reading lifecycle rows: as ``AlarmView``, and what a worker was last told about."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloud.lifecycle.model import OPEN_STATES, AlarmView, OutboxState, State
from cloud.lifecycle.tables import escalation_steps, lifecycle_alarms, outbox
from rules.meaning import Category, Notify

CHUNK = 500  # ids per IN (...) list: SQLite's bound-parameter limit is far above


def to_view(r: Any) -> AlarmView:
    category = Category(r.category) if r.category is not None else None
    return AlarmView(
        r.alarm_id, r.key, r.rule_id, r.device, r.gateway, r.severity, r.title_en, r.title_zh,
        category, Notify(r.notify), r.clears, State(r.state), r.raised_at,
    )  # fmt: skip


def views(conn: Connection, ids: Sequence[int]) -> dict[int, AlarmView]:
    out: dict[int, AlarmView] = {}
    unique = sorted(set(ids))
    for i in range(0, len(unique), CHUNK):
        chunk = unique[i : i + CHUNK]
        rows = conn.execute(
            sa.select(lifecycle_alarms).where(lifecycle_alarms.c.alarm_id.in_(chunk))
        ).all()
        out.update((r.alarm_id, to_view(r)) for r in rows)
    return out


def latest_notified(conn: Connection, worker_id: str) -> int | None:
    """The open alarm this worker was most recently sent (an SMS reply without an id means it)."""
    s, a = escalation_steps, lifecycle_alarms
    q = (
        sa.select(s.c.alarm_id, s.c.workers)
        .join(a, a.c.alarm_id == s.c.alarm_id)
        .where(
            a.c.state.in_([st.value for st in OPEN_STATES]),
            s.c.workers.contains(json.dumps(worker_id)),
        )
        .order_by(s.c.done_at.desc(), s.c.alarm_id.desc())
    )
    for alarm_id, workers in conn.execute(q):
        if worker_id in json.loads(workers):  # LIKE is only a pre-filter
            return int(alarm_id)
    return None


def outbox_problem(db: Engine, now: float, max_age_s: float) -> str | None:
    """For readiness: why notifications are late (a due one waited past *max_age_s*), or None.

    A plain read on *db* (an engine that does not begin IMMEDIATE): in WAL mode it answers
    while a writer holds the lock, so readiness can tell a lock from a late outbox."""
    o = outbox
    unsent = (OutboxState.PENDING.value, OutboxState.SENDING.value)
    with db.connect() as conn:
        count, oldest = conn.execute(
            sa.select(sa.func.count(), sa.func.min(o.c.next_attempt_at)).where(
                o.c.state.in_(unsent), o.c.next_attempt_at <= now
            )
        ).one()
    if oldest is not None and now - oldest > max_age_s:
        return f"{count} notifications due, the oldest for {now - oldest:.0f} s"
    return None
