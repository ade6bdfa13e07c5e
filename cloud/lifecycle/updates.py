"""Our side's word to the brigade that is not a step of the alarm's own state: the owner or
key holder of the premises was reached (the crew will get in without forcing a door).

Like the lifecycle's steps: an audit event and the feed's message in one transaction, once
per alarm (a repeat changes nothing).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.lifecycle.audit import Event, append
from cloud.lifecycle.errors import IllegalTransition, UnknownAlarm
from cloud.lifecycle.model import FeedStep, State
from cloud.lifecycle.rule_alarms import alarm_events
from cloud.lifecycle.steps import StepContext, locked

KEY_HOLDER_KIND = "key_holder"  # the audit event's kind


def key_holder_reached(
    db: Engine, ctx: StepContext, alarm_id: int, *, actor: str, note: str | None, now: float
) -> bool:
    """Record that *actor* reached the key holder; False when it was recorded already."""
    e = alarm_events
    with db.begin() as conn:
        row = locked(conn, alarm_id)  # a repeat on another worker at once waits, then sees it
        if row is None:
            raise UnknownAlarm(alarm_id)
        done = conn.execute(
            sa.select(e.c.id).where(e.c.alarm_id == alarm_id, e.c.kind == KEY_HOLDER_KIND)
        ).first()
        if done is not None:
            return False
        if row.state == State.RESOLVED:
            raise IllegalTransition(alarm_id, State(row.state), "key holder", "it is resolved")
        detail = {"from": row.state, "note": note}
        append(conn, [Event(alarm_id, row.key, row.severity, KEY_HOLDER_KIND, actor, now, detail)])
        if ctx.feed is not None:
            ctx.feed.record(conn, alarm_id, FeedStep.KEY_HOLDER, now)
    return True
