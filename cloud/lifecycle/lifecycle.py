"""The alarm lifecycle on the database: rule transitions in, people's actions, SLA overdue.

Synchronous and blocking (SQLAlchemy): async callers go through ``AlarmDesk``, which runs
these in a thread. Each public method is one transaction.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloud.lifecycle import machine, reports
from cloud.lifecycle.audit import Event, append
from cloud.lifecycle.errors import IllegalTransition, UnknownAlarm
from cloud.lifecycle.model import (
    OPEN_STATES,
    ActionResult,
    FeedStep,
    Outcome,
    State,
    StepRequest,
    TargetKind,
)
from cloud.lifecycle.outbox import cancel_for, enqueue
from cloud.lifecycle.rule_alarms import AlarmChange, alarm_events, alarms
from cloud.lifecycle.steps import StepContext, Timer, climb, locked, rearm, run_step
from cloud.lifecycle.tables import lifecycle_alarms
from cloud.lifecycle.views import to_view
from rules.meaning import Category, Notify

logger = logging.getLogger(__name__)
ACTOR = "lifecycle"
L = lifecycle_alarms
OPEN = [s.value for s in OPEN_STATES]


@dataclass(frozen=True, slots=True)
class Action:
    """What a person's action did, and what the caller must do next on the event loop."""

    result: ActionResult
    timers: tuple[Timer, ...] = ()
    cancel: tuple[str, ...] = ()  # job ids no longer needed
    close_key: str | None = None  # the rule engine's alarm to close (a person resolved it)


class Lifecycle:
    """Alarm states, audit events and escalation steps in one database."""

    def __init__(
        self, db: Engine, ctx: StepContext, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.ctx = ctx
        self.config = ctx.config
        self.clock = clock

    # -- rule transitions -------------------------------------------------------------------
    def apply_changes(self, changes: Sequence[AlarmChange]) -> list[Timer]:
        """Rule transitions committed by ingest: raise, severity changes, sensor clears."""
        timers: list[Timer] = []
        now = self.clock()
        with self.db.begin() as conn:
            for c in changes:
                if c.kind == "raise":
                    timers.extend(self._raise(conn, c, now))
                elif c.kind in ("upgrade", "downgrade"):
                    self._severity(conn, c.key, c.severity)
                elif c.kind == "clear":
                    self._cleared(conn, c.key, c.clears, now)
                elif c.kind == "confirm":
                    timers.extend(self._confirmed(conn, c, now))
        return timers

    def adopt_orphans(self) -> list[Timer]:
        """Open alarms ingest stored but no desk saw (a crash before on_changes): at start,
        and in each sweep of the scaled mode (an anti-join on indexes: cheap to repeat)."""
        now = self.clock()
        with self.db.begin() as conn:
            ids = conn.execute(
                sa.select(alarms.c.id).where(
                    alarms.c.state == "open", ~sa.exists().where(L.c.alarm_id == alarms.c.id)
                ).order_by(alarms.c.id)
            ).scalars().all()  # fmt: skip
            found = (self._open_alarm(conn, alarms.c.id == i) for i in ids)
            rows = [r for r in found if r is not None and not self._adopted(conn, r.id)]
            timers = [t for r in rows for t in self._adopt(conn, r, now)]
            auto = conn.execute(
                sa.select(L.c.key).where(L.c.state.in_(OPEN), L.c.clears == "auto")
                .where(sa.exists().where(alarms.c.id == L.c.alarm_id, alarms.c.state == "cleared"))
            ).scalars().all()  # fmt: skip
            for key in auto:
                self._cleared(conn, key, "auto", now)
        if rows or auto:
            logger.info("adopted %d open alarms and %d missed clears", len(rows), len(auto))
        return timers

    def report(self, report: reports.HazardReport) -> tuple[int, list[Timer]]:
        """A worker's hazard report: an alarm dispatched like a sensor's (a repeat: the same)."""
        now = self.clock()
        try:
            with self.db.begin() as conn:
                found = reports.existing(conn, report.report_id)
                if found is not None:
                    return found, []
                row = reports.store(conn, report, now)
                return int(row.id), self._adopt(conn, row, now)
        except sa.exc.IntegrityError:
            with self.db.connect() as conn:  # the same form, sent to two workers at once
                found = reports.existing(conn, report.report_id)
            if found is None:
                raise
            return found, []

    def _raise(self, conn: Connection, c: AlarmChange, now: float) -> list[Timer]:
        row = self._open_alarm(conn, alarms.c.key == c.key)
        if row is None:
            logger.warning("alarm %s: raised but not open in the store; skipped", c.key)
            return []
        if self._adopted(conn, row.id):
            return []  # seen already (adopted by a sweep, or a repeated batch)
        return self._adopt(conn, row, now)

    def _open_alarm(self, conn: Connection, which: sa.ColumnElement[bool]) -> Any:
        """The open stored alarm *which*, locked (PostgreSQL: FOR UPDATE on ``alarms``).

        A raise and the other workers' orphan sweeps adopt an alarm once: the second to lock
        it waits, then finds the lifecycle row the first one wrote (``_adopted``).
        """
        return conn.execute(
            sa.select(alarms).where(which, alarms.c.state == "open").with_for_update()
        ).first()

    def _adopted(self, conn: Connection, alarm_id: int) -> bool:
        return (
            conn.execute(sa.select(L.c.alarm_id).where(L.c.alarm_id == alarm_id)).first()
            is not None
        )

    def _adopt(self, conn: Connection, a: Any, now: float) -> list[Timer]:
        cfg = self.config
        sla = cfg.sla[a.severity]
        policy = cfg.policy_by_severity[a.severity]
        conn.execute(
            sa.insert(L).values(
                alarm_id=a.id, key=a.key, rule_id=a.rule_id, device=a.device, gateway=a.gateway,
                severity=a.severity, title_en=a.title_en, title_zh=a.title_zh,
                category=a.category, notify=a.notify, clears=a.clears,
                policy=policy, state=State.RAISED, raised_at=now, ack_due_at=now + sla.ack_s,
                resolve_due_at=now + sla.resolve_s, overdue=False, overdue_ack=False,
                overdue_resolve=False, next_seq=0, next_index=None, next_due_at=None,
            )
        )  # fmt: skip
        self._feed(conn, a.id, FeedStep.RAISED, now)
        if a.notify == Notify.BOARD:  # shown on the board only: no message, no escalation
            ev = Event(a.id, a.key, a.severity, "board_only", ACTOR, now, {"notify": a.notify})
            append(conn, [ev])
            return []
        return self._start_chain(conn, a.id, policy, now)

    def _start_chain(self, conn: Connection, alarm_id: int, policy: str, now: float) -> list[Timer]:
        """Point the alarm at its policy's first step; run it now if it is due at once."""
        steps = self.config.policies[policy].steps
        if not steps:
            return []
        first = now + steps[0].wait_s
        conn.execute(
            sa.update(L).where(L.c.alarm_id == alarm_id).values(next_index=0, next_due_at=first)
        )
        if first <= now:  # the first notification goes out in the raise's own transaction
            nxt = run_step(conn, self.ctx, alarm_id, 0, now)
            return [nxt] if nxt else []
        return [Timer("step", alarm_id, 0, first)]

    def _confirmed(self, conn: Connection, c: AlarmChange, now: float) -> list[Timer]:
        """A correlation confirmed the alarm: its notify holds if more urgent (a confirmed
        fire is paged even if its rule alone would only be summarised or boarded)."""
        row = self._open_by_key(conn, c.key)
        if row is None:
            return []
        self._feed(conn, row.alarm_id, FeedStep.CONFIRMED, now)
        if Notify(c.notify).urgency <= Notify(row.notify).urgency:
            return []
        conn.execute(sa.update(L).where(L.c.alarm_id == row.alarm_id).values(notify=c.notify))
        detail = {"from": row.notify, "to": c.notify, **c.detail}
        append(
            conn, [Event(row.alarm_id, c.key, row.severity, "notify_raised", ACTOR, now, detail)]
        )
        unstarted = row.next_index is None and row.next_seq == 0
        if row.notify == Notify.BOARD and unstarted and State(row.state) is State.RAISED:
            return self._start_chain(conn, row.alarm_id, row.policy, now)
        return []

    def _severity(self, conn: Connection, key: str, severity: str) -> None:
        row = self._open_by_key(conn, key)
        if row is None:
            return
        sla = self.config.sla[severity]  # the stricter of the old and the new SLA holds
        conn.execute(
            sa.update(L).where(L.c.alarm_id == row.alarm_id).values(
                severity=severity,
                ack_due_at=min(row.ack_due_at, row.raised_at + sla.ack_s),
                resolve_due_at=min(row.resolve_due_at, row.raised_at + sla.resolve_s),
            )
        )  # fmt: skip

    def _cleared(self, conn: Connection, key: str, clears: str, now: float) -> None:
        row = self._open_by_key(conn, key)
        if row is None:
            return
        if clears != "auto" or row.clears != "auto":  # a person closes manual (fire) alarms
            ev = Event(row.alarm_id, key, row.severity, "clear_ignored", "sensor", now,
                       {"why": "manual alarm: a person closes it"})  # fmt: skip
            append(conn, [ev])
            return
        self._resolve_row(
            conn, row, "sensor", Outcome.REAL, channel=None, note="cleared by the sensor", now=now
        )

    def _open_by_key(self, conn: Connection, key: str) -> Any:
        return conn.execute(
            sa.select(L).where(L.c.key == key, L.c.state.in_(OPEN)).order_by(L.c.alarm_id.desc())
            .with_for_update()
        ).first()  # fmt: skip

    # -- people ------------------------------------------------------------------------------
    def acknowledge(
        self, alarm_id: int, actor: str, channel: str | None = None, note: str | None = None
    ) -> Action:
        """Take the alarm: stops the chain, arms the on-site timeout (repeat: no change)."""
        now = self.clock()
        with self.db.begin() as conn:
            row = self._row(conn, alarm_id)
            d = machine.acknowledge(alarm_id, State(row.state), row.acknowledged_by)
            if not d.changed:
                return Action(ActionResult(alarm_id, d.to, False, d.detail))
            due = now + self.config.sla[row.severity].on_site_s
            conn.execute(
                sa.update(L).where(L.c.alarm_id == alarm_id).values(
                    state=d.to, acknowledged_at=now, acknowledged_by=actor, on_site_due_at=due,
                    next_index=None, next_due_at=None,
                    overdue_ack=L.c.overdue_ack | (now > row.ack_due_at),
                    overdue=L.c.overdue | (now > row.ack_due_at),
                )
            )  # fmt: skip
            self._event(conn, row, "acknowledged", actor, now=now, channel=channel, note=note)
            self._feed(conn, alarm_id, FeedStep.ACKNOWLEDGED, now)
        timer = Timer("ack_timeout", alarm_id, row.next_seq, due)
        return Action(
            ActionResult(alarm_id, d.to, True, d.detail),
            timers=(timer,),
            cancel=(Timer("step", alarm_id, row.next_seq, now).job_id,),
        )

    def arrive(
        self, alarm_id: int, actor: str, channel: str | None = None, note: str | None = None
    ) -> Action:
        """On site: the on-site timeout is over (repeat: no change)."""
        now = self.clock()
        with self.db.begin() as conn:
            row = self._row(conn, alarm_id)
            d = machine.arrive(alarm_id, State(row.state))
            if not d.changed:
                return Action(ActionResult(alarm_id, d.to, False, d.detail))
            conn.execute(
                sa.update(L).where(L.c.alarm_id == alarm_id)
                .values(state=d.to, on_site_at=now, on_site_due_at=None)
            )  # fmt: skip
            self._event(conn, row, "on_site", actor, now=now, channel=channel, note=note)
            self._feed(conn, alarm_id, FeedStep.ON_SITE, now)
        cancel = (Timer("ack_timeout", alarm_id, row.next_seq, now).job_id,)
        return Action(ActionResult(alarm_id, d.to, True, d.detail), cancel=cancel)

    def resolve(
        self,
        alarm_id: int,
        actor: str,
        outcome: Outcome,
        channel: str | None = None,
        note: str | None = None,
    ) -> Action:
        """Close the alarm with an outcome; the rule engine's alarm is closed by the caller."""
        now = self.clock()
        with self.db.begin() as conn:
            row = self._row(conn, alarm_id)
            d = machine.resolve(alarm_id, State(row.state), row.outcome, outcome)
            if not d.changed:
                return Action(ActionResult(alarm_id, d.to, False, d.detail))
            self._resolve_row(conn, row, actor, outcome, channel=channel, note=note, now=now)
        cancel = tuple(Timer(k, alarm_id, row.next_seq, now).job_id
                       for k in ("step", "ack_timeout"))  # fmt: skip
        engine_key = None if row.category == Category.REPORT else row.key  # no rule's alarm
        return Action(ActionResult(alarm_id, d.to, True, d.detail), cancel=cancel,
                      close_key=engine_key)  # fmt: skip

    def _resolve_row(
        self, conn: Connection, row: Any, actor: str, outcome: Outcome, *,
        channel: str | None, note: str | None, now: float,
    ) -> None:  # fmt: skip
        late = now > row.resolve_due_at
        conn.execute(
            sa.update(L).where(L.c.alarm_id == row.alarm_id).values(
                state=State.RESOLVED, outcome=outcome, resolved_at=now, resolved_by=actor,
                on_site_due_at=None, next_index=None, next_due_at=None,
                overdue_resolve=L.c.overdue_resolve | late, overdue=L.c.overdue | late,
            )
        )  # fmt: skip
        # the store's row leaves 'open' too: the next raise of this key is a new alarm
        conn.execute(
            sa.update(alarms).where(alarms.c.id == row.alarm_id, alarms.c.state == "open")
            .values(state="resolved", cleared_ts=now, updated_ts=now)
        )  # fmt: skip
        cancel_for(conn, row.alarm_id, "alarm resolved before delivery")
        self._event(
            conn, row, "resolved", actor, now=now, channel=channel, note=note, outcome=outcome.value
        )
        step = FeedStep.FALSE_ALARM if outcome is Outcome.FALSE_ALARM else FeedStep.RESOLVED
        self._feed(conn, row.alarm_id, step, now)
        if row.category == Category.REPORT:
            done = self._row(conn, row.alarm_id)
            reports.tell_reporter(conn, done, self.config, self.ctx.renderer, now)

    def verify(
        self, alarm_id: int, actor: str, channel: str | None = None, note: str | None = None
    ) -> Action:
        """The worker on site confirms the alarm is real (the brigade hears it at once); the
        alarm stays open until it is resolved. A repeat changes nothing."""
        now = self.clock()
        with self.db.begin() as conn:
            row = self._row(conn, alarm_id)
            if row.state == State.RESOLVED:
                raise IllegalTransition(alarm_id, State(row.state), "confirm", "it is resolved")
            done = conn.execute(
                sa.select(alarm_events.c.id).where(
                    alarm_events.c.alarm_id == alarm_id, alarm_events.c.kind == "verified"
                )
            ).first()
            if done is not None:
                return Action(ActionResult(alarm_id, State(row.state), False, "already confirmed"))
            self._event(conn, row, "verified", actor, now=now, channel=channel, note=note)
            self._feed(conn, alarm_id, FeedStep.VERIFIED, now)
        return Action(ActionResult(alarm_id, State(row.state), True, "confirmed real on site"))

    def page_commander(
        self, alarm_id: int, actor: str, kind: str, detail: dict[str, Any], token: str
    ) -> bool:
        """Tell the duty commander at once (a brigade refused the alarm): an audit event and
        one message each, idempotent per *token*. False when it was done already."""
        now = self.clock()
        with self.db.begin() as conn:
            row = self._row(conn, alarm_id)
            mid = f"a{alarm_id}-{token}"
            seen = conn.execute(
                sa.select(alarm_events.c.id).where(
                    alarm_events.c.alarm_id == alarm_id, alarm_events.c.kind == kind,
                    alarm_events.c.detail.contains(json.dumps(mid)),
                )
            ).first()  # fmt: skip
            if seen is not None:
                return False
            alarm = to_view(row)
            request = StepRequest(row.next_seq, -1, TargetKind.DUTY_COMMANDER, 0, frozenset())
            targets = self.ctx.dispatcher.targets(alarm, request)
            cfg = self.config
            for t in targets:
                enqueue(
                    conn, message_id=f"{mid}-{t.worker_id}", alarm_id=alarm_id, target=t,
                    rendered=self.ctx.renderer.alert(alarm, t),
                    channels=t.channels or cfg.outbox.channels, now=now,
                    window_s=cfg.grouping.window_s,
                )  # fmt: skip
            workers = [t.worker_id for t in targets]
            event = Event(alarm_id, row.key, row.severity, kind, actor, now,
                          {**detail, "message": mid, "workers": workers})  # fmt: skip
            append(conn, [event])
        return True

    def need_help(
        self, alarm_id: int, actor: str, channel: str | None = None, note: str | None = None
    ) -> Action:
        """A worker asks for help: the chain's next step runs now (the alarm stays open)."""
        now = self.clock()
        with self.db.begin() as conn:
            row = self._row(conn, alarm_id)
            if row.state == State.RESOLVED:
                raise IllegalTransition(
                    alarm_id, State(row.state), "ask for help", "it is resolved"
                )
            detail = {"from": row.state, "channel": channel, "note": note}
            timer = climb(
                conn,
                self.config,
                row,
                now,
                Event(alarm_id, row.key, row.severity, "need_help", actor, now, detail),
            )
        cancel = (Timer("ack_timeout", alarm_id, row.next_seq, now).job_id,)
        result = ActionResult(
            alarm_id,
            State.ESCALATED if timer else State(row.state),
            True,
            "help requested: the next step runs now",
        )
        return Action(result, timers=(timer,) if timer else (), cancel=cancel)

    def _row(self, conn: Connection, alarm_id: int, *, lock: bool = True) -> Any:
        """The alarm's row; locked by default: an action serializes with steps (see steps)."""
        row = locked(conn, alarm_id) if lock else conn.execute(
            sa.select(L).where(L.c.alarm_id == alarm_id)
        ).first()  # fmt: skip
        if row is None:
            raise UnknownAlarm(alarm_id)
        return row

    def _feed(self, conn: Connection, alarm_id: int, step: FeedStep, now: float) -> None:
        if self.ctx.feed is not None:
            self.ctx.feed.record(conn, alarm_id, step, now)

    def _event(
        self, conn: Connection, row: Any, kind: str, actor: str, *, now: float,
        channel: str | None, note: str | None, **extra: str,
    ) -> None:  # fmt: skip
        detail = {"from": row.state, "channel": channel, "note": note, **extra}
        append(conn, [Event(row.alarm_id, row.key, row.severity, kind, actor, now, detail)])

    # -- timers ------------------------------------------------------------------------------
    def fire(self, timer: Timer) -> Timer | None:
        """A scheduler job fired: run the step or the ack timeout (a repeat does nothing)."""
        with self.db.begin() as conn:
            if timer.kind == "step":
                return run_step(conn, self.ctx, timer.alarm_id, timer.token, self.clock())
            return rearm(conn, self.config, timer.alarm_id, timer.token, self.clock())

    def timers(self) -> list[Timer]:
        """Every timer the database says should exist (the recovery sweep after a restart)."""
        with self.db.connect() as conn:
            steps = conn.execute(
                sa.select(L.c.alarm_id, L.c.next_seq, L.c.next_due_at)
                .where(L.c.next_index.is_not(None), L.c.state.in_(OPEN))
            ).all()  # fmt: skip
            acks = conn.execute(
                sa.select(L.c.alarm_id, L.c.next_seq, L.c.on_site_due_at)
                .where(L.c.state == State.ACKNOWLEDGED, L.c.on_site_due_at.is_not(None))
            ).all()  # fmt: skip
        return [Timer("step", *r) for r in steps] + [Timer("ack_timeout", *r) for r in acks]

    # -- reading -----------------------------------------------------------------------------
    def state(self, alarm_id: int) -> dict[str, Any]:
        with self.db.connect() as conn:
            return dict(self._row(conn, alarm_id, lock=False)._mapping)

    def history(self, alarm_id: int) -> list[dict[str, Any]]:
        """The alarm's audit trail, rules and people together, oldest first."""
        q = sa.select(alarm_events).where(alarm_events.c.alarm_id == alarm_id)
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(alarm_events.c.id))]

    def false_alarm_counts(self, since: float | None = None) -> dict[str, int]:
        """False alarms per device (resolved as false_alarm, optionally since a time)."""
        q = (
            sa.select(L.c.device, sa.func.count())
            .where(L.c.outcome == Outcome.FALSE_ALARM, L.c.device.is_not(None))
            .group_by(L.c.device)
        )
        if since is not None:
            q = q.where(L.c.resolved_at >= since)
        with self.db.connect() as conn:
            return {d: n for d, n in conn.execute(q)}

    def stale_engine_keys(self, open_keys: Iterable[str]) -> list[str]:
        """Keys the rule engine holds open whose alarm a person resolved (close them again:
        the engine's close was lost with a crash before its next checkpoint)."""
        keys = set(open_keys)
        if not keys:
            return []
        with self.db.connect() as conn:
            still = set(conn.execute(
                sa.select(alarms.c.key).where(alarms.c.key.in_(keys), alarms.c.state == "open")
            ).scalars())  # fmt: skip
        return sorted(keys - still)
