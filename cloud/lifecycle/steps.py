"""One escalation step, run inside the caller's transaction, idempotent per (alarm, seq).

The step's effects — choosing targets, enqueueing their notifications, the audit event, the
state change and the pointer to the next step — commit together with the step's row in
``escalation_steps``. A job that fires again (twice, late after a restart, or on another
cloud worker at the same moment) waits for the alarm's row lock, finds ``next_seq`` moved
on, and does nothing.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cloud.lifecycle.audit import Event, append
from cloud.lifecycle.config import LifecycleConfig
from cloud.lifecycle.model import WAITING_STATES, State, StepRequest, TargetKind
from cloud.lifecycle.outbox import enqueue
from cloud.lifecycle.protocols import AlarmFeed, Dispatcher, Renderer
from cloud.lifecycle.tables import escalation_steps, lifecycle_alarms
from cloud.lifecycle.views import to_view
from rules.meaning import Notify

ACTOR = "escalation"


@dataclass(frozen=True, slots=True)
class Timer:
    """A job to (re)schedule: a step (token = seq) or an ack timeout (token = next_seq)."""

    kind: str  # "step" | "ack_timeout"
    alarm_id: int
    token: int
    due_at: float

    @property
    def job_id(self) -> str:
        return f"{self.kind}:{self.alarm_id}:{self.token}"


@dataclass(frozen=True, slots=True)
class StepContext:
    config: LifecycleConfig
    dispatcher: Dispatcher
    renderer: Renderer
    feed: AlarmFeed | None = None  # told of raises, confirmations, people's actions, outcomes


def locked(conn: Connection, alarm_id: int) -> Any:
    """The alarm's lifecycle row, locked for this transaction (PostgreSQL: FOR UPDATE).

    Steps and people's actions on one alarm serialize on it: a worker that fires the same
    timer as another, or acts on the alarm meanwhile, waits and then reads what the first
    one committed (the moved ``next_seq``, the new state) — so it does nothing twice.
    SQLite has one writer at a time anyway (and SQLAlchemy leaves FOR UPDATE out).
    """
    return conn.execute(
        sa.select(lifecycle_alarms).where(lifecycle_alarms.c.alarm_id == alarm_id).with_for_update()
    ).first()


def run_step(
    conn: Connection, ctx: StepContext, alarm_id: int, seq: int, now: float
) -> Timer | None:
    """Run step *seq* of the alarm if it is still due; the next step's timer, if any."""
    row = locked(conn, alarm_id)
    if row is None or row.next_seq != seq or row.next_index is None:
        return None  # done already, stopped, or superseded
    if State(row.state) not in WAITING_STATES:
        return None
    done = conn.execute(
        sa.select(escalation_steps.c.workers).where(escalation_steps.c.alarm_id == alarm_id)
    ).scalars()
    already = frozenset(w for ws in done for w in json.loads(ws))
    steps = ctx.config.policies[row.policy].steps
    index = row.next_index
    step = steps[index]
    count = ctx.config.fan(row.severity) if step.target is TargetKind.NEXT_NEAREST else 0
    alarm = to_view(row)
    targets = list(
        ctx.dispatcher.targets(alarm, StepRequest(seq, index, step.target, count, already))
    )
    conn.execute(
        sa.insert(escalation_steps).values(
            alarm_id=alarm_id, seq=seq, step_index=index, target=step.target,
            workers=json.dumps([t.worker_id for t in targets]), done_at=now,
        )
    )  # fmt: skip
    cfg = ctx.config
    summary = alarm.notify is Notify.SUMMARY  # no alert of its own: the next grouped summary
    for t in targets:
        channels = t.channels or cfg.outbox.channels
        rendered = ctx.renderer.alert(alarm, t)
        mid = f"a{alarm_id}-s{seq}-{t.worker_id}"
        enqueue(conn, message_id=mid, alarm_id=alarm_id, target=t, rendered=rendered,
                channels=channels, now=now, window_s=cfg.grouping.window_s,
                for_summary=summary)  # fmt: skip
    state = State(row.state)
    if targets:
        state = State.NOTIFIED if state is State.RAISED else State.ESCALATED
    kind = "no_targets" if not targets else state.value
    detail = {"step": index, "seq": seq, "target": step.target.value,
              "workers": [t.worker_id for t in targets], "from": row.state}  # fmt: skip
    if summary:
        detail["notify"] = alarm.notify.value
    append(conn, [Event(alarm_id, row.key, row.severity, kind, ACTOR, now, detail)])
    nxt = index + 1 if index + 1 < len(steps) else None
    due = now + steps[nxt].wait_s if nxt is not None else None
    conn.execute(
        sa.update(lifecycle_alarms)
        .where(lifecycle_alarms.c.alarm_id == alarm_id)
        .values(state=state, next_seq=seq + 1, next_index=nxt, next_due_at=due)
    )
    return Timer("step", alarm_id, seq + 1, due) if due is not None else None


def rearm(
    conn: Connection, config: LifecycleConfig, alarm_id: int, token: int, now: float
) -> Timer | None:
    """Acknowledged but not on site in time: the chain climbs on from where it stopped."""
    row = locked(conn, alarm_id)
    if row is None or row.state != State.ACKNOWLEDGED or row.next_seq != token:
        return None
    if row.notify == Notify.BOARD:  # nobody was sent: a late arrival does not call others
        return None
    detail = {"acknowledged_by": row.acknowledged_by, "from": row.state}
    return climb(
        conn,
        config,
        row,
        now,
        Event(alarm_id, row.key, row.severity, "ack_timeout", ACTOR, now, detail),
    )


def climb(
    conn: Connection, config: LifecycleConfig, row: Any, now: float, event: Event
) -> Timer | None:
    """Run the chain's next step now (ack timeout, or a worker asking for help); audit *event*."""
    steps = config.policies[row.policy].steps
    if not steps:
        append(conn, [event])
        return None
    last = conn.execute(
        sa.select(sa.func.max(escalation_steps.c.step_index)).where(
            escalation_steps.c.alarm_id == row.alarm_id
        )
    ).scalar()
    index = min((last if last is not None else -1) + 1, len(steps) - 1)
    conn.execute(
        sa.update(lifecycle_alarms)
        .where(lifecycle_alarms.c.alarm_id == row.alarm_id)
        .values(state=State.ESCALATED, on_site_due_at=None, next_index=index, next_due_at=now)
    )
    append(conn, [dataclasses.replace(event, detail={**event.detail, "next_step": index})])
    return Timer("step", row.alarm_id, row.next_seq, now)
