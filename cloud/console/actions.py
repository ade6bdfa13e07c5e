"""What a dispatcher does from the console: reassign (page a chosen worker), escalate now,
resolve with an outcome and a note. Each goes through the desk, so the audit, the outbox, the
timers and the live board follow as they do for a worker's action.

Reassigning pages one named person, which no escalation step does; it is written with the
lifecycle's own pieces (the renderer, the outbox's ``enqueue``, the audit's ``append``) in one
transaction, like the lifecycle's other one-off pages.
"""

from __future__ import annotations

import asyncio
import secrets

import sqlalchemy as sa

from cloud.lifecycle import AlarmDesk
from cloud.lifecycle.audit import Event, append
from cloud.lifecycle.errors import IllegalTransition, UnknownAlarm
from cloud.lifecycle.lifecycle import Lifecycle
from cloud.lifecycle.model import ActionResult, Outcome, State, Target
from cloud.lifecycle.outbox import enqueue
from cloud.lifecycle.tables import lifecycle_alarms
from cloud.lifecycle.views import to_view
from cloud.registry.tables import workers

CHANNEL = "console"


def actor_of(username: str) -> str:
    """How a staff member appears in the audit."""
    return f"console:{username}"


def page_worker(life: Lifecycle, alarm_id: int, actor: str, worker_id: str, note: str) -> bool:
    """Queue an alert of *alarm_id* to *worker_id* and record who asked; False for an
    unknown worker. UnknownAlarm / IllegalTransition (resolved) as the lifecycle's actions."""
    now = life.clock()
    with life.db.begin() as conn:
        row = conn.execute(
            sa.select(lifecycle_alarms).where(lifecycle_alarms.c.alarm_id == alarm_id)
        ).first()
        if row is None:
            raise UnknownAlarm(alarm_id)
        if row.state == State.RESOLVED:
            raise IllegalTransition(alarm_id, row.state, "reassign", "it is resolved")
        person = conn.execute(sa.select(workers).where(workers.c.id == worker_id)).first()
        if person is None:
            return False
        target = Target(worker_id, locale=person.locale)
        mid = f"a{alarm_id}-console-{secrets.token_hex(6)}"
        enqueue(
            conn,
            message_id=f"{mid}-{worker_id}",
            alarm_id=alarm_id,
            target=target,
            rendered=life.ctx.renderer.alert(to_view(row), target),
            channels=life.config.outbox.channels,
            now=now,
            window_s=0.0,
        )
        detail = {"workers": [worker_id], "note": note, "channel": CHANNEL, "message": mid}
        append(conn, [Event(alarm_id, row.key, row.severity, "reassigned", actor, now, detail)])
    return True


async def reassign(
    desk: AlarmDesk, alarm_id: int, username: str, worker_id: str, note: str
) -> bool:
    """Page *worker_id* about the alarm now; the outbox and the board are told."""
    done = await asyncio.to_thread(
        page_worker, desk.lifecycle, alarm_id, actor_of(username), worker_id, note
    )
    if done:
        desk.outbox.kick()
        for kick in desk.after_commit:
            kick()
    return done


async def escalate(desk: AlarmDesk, alarm_id: int, username: str, note: str) -> ActionResult:
    """Run the escalation's next step now."""
    return await desk.need_help(alarm_id, actor_of(username), CHANNEL, note or None)


async def resolve(
    desk: AlarmDesk, alarm_id: int, username: str, outcome: Outcome, note: str
) -> ActionResult:
    """Close the alarm with *outcome* and *note*."""
    return await desk.resolve(alarm_id, actor_of(username), outcome, CHANNEL, note or None)
