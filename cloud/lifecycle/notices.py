"""Telling the people on an alarm something that is not the alarm itself (a notice).

The notice goes to the worker who took the alarm or, while nobody has, to every worker its
escalation reached; each gets one message through the outbox (durable; after a crash it goes
out once, with the same id) in the language and on the channels of the alert they had. One
transaction; idempotent per token: a repeat enqueues nothing and appends nothing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloud.lifecycle.audit import Event, append
from cloud.lifecycle.errors import UnknownAlarm
from cloud.lifecycle.model import Notice, Target
from cloud.lifecycle.outbox import enqueue_notice
from cloud.lifecycle.steps import StepContext, locked
from cloud.lifecycle.tables import escalation_steps, outbox
from cloud.lifecycle.views import to_view

logger = logging.getLogger(__name__)

KIND = "notice"  # the audit event's kind


def tell(
    db: Engine, ctx: StepContext, alarm_id: int, notice: Notice, *, token: str, actor: str,
    now: float,
) -> list[str]:  # fmt: skip
    """Queue *notice* for the alarm's people once per *token*; the workers newly told."""
    with db.begin() as conn:
        row = locked(conn, alarm_id)  # a repeat on another worker at once waits, then sees it
        if row is None:
            raise UnknownAlarm(alarm_id)
        alarm = to_view(row)
        told: list[str] = []
        for worker in recipients(conn, row):
            target = _target(conn, alarm_id, worker, ctx.config.outbox.channels)
            mid = f"a{alarm_id}-n-{token}-{worker}"[:96]
            rendered = ctx.renderer.notice(alarm, target, notice)
            channels = target.channels or ctx.config.outbox.channels
            if enqueue_notice(conn, message_id=mid, alarm_id=alarm_id, target=target,
                              rendered=rendered, channels=channels, now=now):  # fmt: skip
                told.append(worker)
        if told:
            detail = {"notice": notice.kind.value, "token": token, "workers": told,
                      "status": notice.status, "eta_s": notice.eta_s}  # fmt: skip
            append(conn, [Event(alarm_id, row.key, row.severity, KIND, actor, now, detail)])
    if told:
        logger.info("alarm %d: %s notice queued for %s", alarm_id, notice.kind, ", ".join(told))
    return told


def recipients(conn: Connection, row: Any) -> list[str]:
    """The worker who took the alarm; else everyone its escalation reached, in order."""
    if row.acknowledged_by:
        return [str(row.acknowledged_by)]
    steps = conn.execute(
        sa.select(escalation_steps.c.workers)
        .where(escalation_steps.c.alarm_id == row.alarm_id)
        .order_by(escalation_steps.c.seq)
    ).scalars()
    seen: dict[str, None] = {}
    for workers in steps:
        seen.update((str(w), None) for w in json.loads(workers))
    return list(seen)


def _target(conn: Connection, alarm_id: int, worker: str, default: tuple[str, ...]) -> Target:
    """The worker as their alert reached them: its locale and channel order."""
    last = conn.execute(
        sa.select(outbox.c.locale, outbox.c.channels)
        .where(outbox.c.alarm_id == alarm_id, outbox.c.worker_id == worker)
        .order_by(outbox.c.created_at.desc())
    ).first()
    if last is None:
        return Target(worker, default)
    return Target(worker, tuple(json.loads(last.channels)), last.locale)
