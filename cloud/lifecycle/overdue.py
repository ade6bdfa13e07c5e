"""SLA overdue: computed from the deadlines, stored (sticky), audited once per breach."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.lifecycle.audit import Event, append
from cloud.lifecycle.model import OPEN_STATES, WAITING_STATES
from cloud.lifecycle.tables import lifecycle_alarms

L = lifecycle_alarms
OPEN = [s.value for s in OPEN_STATES]
WAITING = [s.value for s in WAITING_STATES]


def _ack_late(now: float | None) -> sa.ColumnElement[bool]:
    """Not yet flagged, still waiting for an acknowledgement (and due by *now*)."""
    cond = sa.and_(
        L.c.overdue_ack.is_(False), L.c.state.in_(WAITING), L.c.acknowledged_at.is_(None)
    )
    return cond if now is None else sa.and_(cond, L.c.ack_due_at <= now)


def _resolve_late(now: float | None) -> sa.ColumnElement[bool]:
    cond = sa.and_(L.c.overdue_resolve.is_(False), L.c.state.in_(OPEN))
    return cond if now is None else sa.and_(cond, L.c.resolve_due_at <= now)


def refresh(db: Engine, now: float) -> tuple[int, float | None]:
    """Flag what became overdue by *now*; (how many flipped, the next deadline or None)."""
    with db.begin() as conn:
        flipped = 0
        for what, late, col in (
            ("acknowledge", _ack_late(now), L.c.overdue_ack),
            ("resolve", _resolve_late(now), L.c.overdue_resolve),
        ):
            # locked: another worker flagging the same breach waits, then finds it flagged
            rows = conn.execute(
                sa.select(L.c.alarm_id, L.c.key, L.c.severity, L.c.ack_due_at,
                          L.c.resolve_due_at).where(late).order_by(L.c.alarm_id)
                .with_for_update()
            ).all()  # fmt: skip
            if not rows:
                continue
            ids = [r.alarm_id for r in rows]
            conn.execute(
                sa.update(L).where(L.c.alarm_id.in_(ids)).values({col: True, L.c.overdue: True})
            )
            due = "ack_due_at" if what == "acknowledge" else "resolve_due_at"
            append(conn, [
                Event(r.alarm_id, r.key, r.severity, "overdue", "sla", now,
                      {"sla": what, "due_at": getattr(r, due)})
                for r in rows
            ])  # fmt: skip
            flipped += len(rows)
        nxt = conn.execute(
            sa.select(
                sa.func.min(sa.case((_ack_late(None), L.c.ack_due_at))),
                sa.func.min(sa.case((_resolve_late(None), L.c.resolve_due_at))),
            )
        ).one()
    times = [t for t in nxt if t is not None]
    return flipped, (min(times) if times else None)
