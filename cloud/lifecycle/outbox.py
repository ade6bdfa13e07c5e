"""The durable notification outbox: enqueue with per-worker grouping, claim, record results.

Every function takes an open transaction: a step's notifications are enqueued in the step's
own transaction, and a claim (``sending``) is committed before the Sender is called. After a
crash ``sending`` rows are an unknown outcome and go out again with the SAME id — the
provider deduplicates by it (Twilio: the idempotency key header / our SMS gateway: the
``message_id``), so the person gets the message once.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from cloud.lifecycle.audit import Event, append
from cloud.lifecycle.config import OutboxConfig
from cloud.lifecycle.model import OutboundMessage, OutboxState, Rendered, Target
from cloud.lifecycle.protocols import Renderer
from cloud.lifecycle.tables import lifecycle_alarms, outbox, outbox_windows
from cloud.lifecycle.views import views
from rules.meaning import Notify

S = OutboxState
ACTOR = "outbox"


@dataclass(frozen=True, slots=True)
class Result:
    """How one send ended: a receipt, or an error and whether it may be retried."""

    message: OutboundMessage
    receipt: str | None = None
    error: str | None = None
    retryable: bool = False


def enqueue(
    conn: Connection,
    *,
    message_id: str,
    alarm_id: int,
    target: Target,
    rendered: Rendered,
    channels: Sequence[str],
    now: float,
    window_s: float,
    for_summary: bool = False,
) -> OutboxState:
    """Queue one alert: at once if the worker's window is over, else held for the summary.

    A held row is due (``next_attempt_at``) when its summary should go: at the end of the
    worker's window. An alert *for_summary* is always held: for the open window's summary,
    or, with no window open, for one ``window_s`` from now (it gathers what comes meanwhile);
    it opens no window, so it never holds back a paged alert.
    """
    ends = conn.execute(
        sa.select(outbox_windows.c.window_ends_at).where(
            outbox_windows.c.worker_id == target.worker_id
        )
    ).scalar()
    open_window = ends is not None and now < ends
    if for_summary:
        state, due = S.HELD, ends if open_window else now + window_s
    else:
        state, due = (S.HELD, ends) if open_window else (S.PENDING, now)
    conn.execute(
        sa.insert(outbox).values(
            {
                **_row(
                    mid=message_id,
                    worker=target.worker_id,
                    locale=target.locale,
                    rendered=rendered,
                    channels=channels,
                    state=state,
                    now=now,
                ),
                "alarm_id": alarm_id,
                "kind": "alert",
                "alarm_ids": json.dumps([alarm_id]),
                "next_attempt_at": due,
            }
        )
    )
    if state is S.PENDING:
        _open_window(conn, target.worker_id, now + window_s, ends is None)
    return state


def enqueue_notice(
    conn: Connection,
    *,
    message_id: str,
    alarm_id: int,
    target: Target,
    rendered: Rendered,
    channels: Sequence[str],
    now: float,
) -> bool:
    """Queue a notice at once (never held for a summary: a summary would word the alarm,
    not the notice); False when *message_id* is queued already (a repeat adds nothing)."""
    if conn.execute(sa.select(outbox.c.id).where(outbox.c.id == message_id)).first():
        return False
    row = _row(mid=message_id, worker=target.worker_id, locale=target.locale,
               rendered=rendered, channels=channels, state=S.PENDING, now=now)  # fmt: skip
    conn.execute(
        sa.insert(outbox).values(
            {**row, "alarm_id": alarm_id, "kind": "notice", "alarm_ids": json.dumps([alarm_id])}
        )
    )
    return True


def _row(
    *,
    mid: str,
    worker: str,
    locale: str,
    rendered: Rendered,
    channels: Sequence[str],
    state: OutboxState,
    now: float,
) -> dict[str, object]:
    return {
        "id": mid,
        "worker_id": worker,
        "locale": locale,
        "text": rendered.text,
        "link": rendered.link,
        "channels": json.dumps(list(channels)),
        "channel_index": 0,
        "channel": channels[0],
        "state": state,
        "attempts": 0,
        "channel_attempts": 0,
        "next_attempt_at": now,
        "errors": "[]",
        "created_at": now,
    }


def _open_window(conn: Connection, worker: str, ends: float, new: bool, bump: int = 0) -> None:
    """Open (or move) *worker*'s window. *new*: no row was read — but another cloud worker
    may insert one meanwhile, so insert-or-update in one statement where the database can."""
    w = outbox_windows
    dialect = conn.dialect.name
    if new and dialect in ("sqlite", "postgresql"):
        module = sqlite_dialect if dialect == "sqlite" else postgresql_dialect
        stmt = module.insert(w).values(worker_id=worker, window_ends_at=ends, summaries=bump)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["worker_id"],
                set_={"window_ends_at": ends, "summaries": w.c.summaries + bump},
            )
        )
    elif new:
        conn.execute(sa.insert(w).values(worker_id=worker, window_ends_at=ends, summaries=bump))
    else:
        conn.execute(
            sa.update(w)
            .where(w.c.worker_id == worker)
            .values(window_ends_at=ends, summaries=w.c.summaries + bump)
        )


def make_summaries(conn: Connection, renderer: Renderer, now: float, window_s: float) -> int:
    """Fold each worker's held alerts into one summary once one of them is due.

    PostgreSQL: the held rows are locked first, so a second cloud worker folding the same
    person's alerts waits, then finds them grouped (and reads the window's count after it).
    """
    due = conn.execute(
        sa.select(outbox.c.worker_id)
        .where(outbox.c.state == S.HELD, outbox.c.next_attempt_at <= now)
        .distinct()
        .order_by(outbox.c.worker_id)
    ).scalars().all()  # fmt: skip
    made = 0
    for worker in due:
        held = conn.execute(
            sa.select(outbox.c.id, outbox.c.alarm_id, outbox.c.locale, outbox.c.channels)
            .where(outbox.c.worker_id == worker, outbox.c.state == S.HELD)
            .order_by(outbox.c.created_at, outbox.c.id)
            .with_for_update()
        ).all()
        if not held:
            continue  # folded by another cloud worker meanwhile
        made += 1
        count = conn.execute(
            sa.select(outbox_windows.c.summaries).where(outbox_windows.c.worker_id == worker)
        ).scalar()
        ids = [h.alarm_id for h in held]
        by_id = views(conn, ids)
        alarms = [by_id[i] for i in ids if i in by_id]
        rendered = renderer.summary(worker, alarms, held[0].locale)
        sid = f"sum-{worker}-{(count or 0) + 1}"
        channels = json.loads(held[0].channels)
        row = _row(mid=sid, worker=worker, locale=held[0].locale, rendered=rendered,
                   channels=channels, state=S.PENDING, now=now)  # fmt: skip
        conn.execute(
            sa.insert(outbox).values(
                {**row, "alarm_id": None, "kind": "summary", "alarm_ids": json.dumps(ids)}
            )
        )
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_([h.id for h in held]))
            .values(state=S.GROUPED, summary_id=sid)
        )
        # a summary that carries a paged alert is that window's message: the next window opens;
        # one of summarised alarms only leaves the window as it was (pages still go at once)
        paged = any(a.notify is Notify.PAGE for a in alarms)
        if count is None:
            _open_window(conn, worker, now + window_s if paged else now, True, bump=1)
        elif paged:
            _open_window(conn, worker, now + window_s, False, bump=1)
        else:
            _count_summary(conn, worker)
    return made


def _count_summary(conn: Connection, worker: str) -> None:
    w = outbox_windows
    conn.execute(sa.update(w).where(w.c.worker_id == worker).values(summaries=w.c.summaries + 1))


def cancel_for(conn: Connection, alarm_id: int, why: str) -> None:
    """An alarm resolved before its alerts went out: they would only be noise now.

    Not the ones a dead claimer may already have handed to the provider (``unsure``): those
    go out again under their key, so the provider's answer is recorded, not lost.
    """
    conn.execute(
        sa.update(outbox)
        .where(
            outbox.c.alarm_id == alarm_id,
            outbox.c.state.in_([S.PENDING, S.HELD]),
            outbox.c.unsure.is_(False),
        )
        .values(state=S.FAILED, last_error=why)
    )


def claim(conn: Connection, now: float, limit: int, claimer: str) -> list[OutboundMessage]:
    """Due messages, marked ``sending`` by *claimer* (the caller commits before sending).

    PostgreSQL: rows another worker is claiming right now are skipped, not waited for, so
    several workers share the queue and none sends a message another holds.
    """
    rows = conn.execute(
        sa.select(outbox)
        .where(outbox.c.state == S.PENDING, outbox.c.next_attempt_at <= now)
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return []
    conn.execute(
        sa.update(outbox)
        .where(outbox.c.id.in_([r.id for r in rows]))
        .values(
            state=S.SENDING,
            attempts=outbox.c.attempts + 1,
            channel_attempts=outbox.c.channel_attempts + 1,
            claimed_by=claimer,
        )
    )
    return [
        OutboundMessage(
            r.id,
            r.worker_id,
            r.channel,
            r.text,
            r.link,
            tuple(json.loads(r.alarm_ids)),
            r.attempts + 1,
        )
        for r in rows
    ]


def recover_sending(conn: Connection, claimer: str) -> int:
    """At start: *claimer*'s own ``sending`` rows (and unclaimed ones, from before claims
    were signed) had an unknown outcome; send them again with the same id."""
    mine = sa.or_(outbox.c.claimed_by == claimer, outbox.c.claimed_by.is_(None))
    return _reset(conn, mine)


def recover_orphaned(conn: Connection, live: Collection[str]) -> int:
    """``sending`` rows claimed by workers not in *live* (dead mid-send): send them again
    with the same id. The provider counts a message its dead claimer did send once."""
    return _reset(conn, sa.or_(outbox.c.claimed_by.is_(None), outbox.c.claimed_by.not_in(live)))


def _reset(conn: Connection, whose: sa.ColumnElement[bool]) -> int:
    return conn.execute(
        sa.update(outbox)
        .where(outbox.c.state == S.SENDING, whose)
        .values(state=S.PENDING, claimed_by=None, unsure=True)
    ).rowcount


def record(
    conn: Connection, results: Sequence[Result], cfg: OutboxConfig, now: float, claimer: str
) -> int:
    """Store how each send ended: sent, retry later, next channel, or failed for good.

    Only rows still ``sending`` under *claimer*'s claim: a row taken from a worker judged
    dead (paused past its heartbeat) is another's now, and that one records it. How many
    were recorded.
    """
    events: list[tuple[OutboundMessage, str, dict[str, object]]] = []
    ids = [res.message.message_id for res in results]
    mine = sa.and_(outbox.c.state == S.SENDING, outbox.c.claimed_by == claimer)
    q = sa.select(outbox).where(outbox.c.id.in_(ids), mine).with_for_update()
    held = {r.id: r for r in conn.execute(q)}
    for res in results:
        row = held.get(res.message.message_id)
        if row is not None:
            events.append(_settle(conn, row, res, cfg, now))
    _audit(conn, events, now)
    return len(held)


def _settle(
    conn: Connection, row: sa.Row[tuple[object, ...]], res: Result, cfg: OutboxConfig, now: float
) -> tuple[OutboundMessage, str, dict[str, object]]:
    m = res.message
    base: dict[str, object] = {"message_id": m.message_id, "channel": m.channel,
                               "attempts": row.attempts, "worker": m.worker_id}  # fmt: skip
    upd = sa.update(outbox).where(outbox.c.id == m.message_id)
    if res.error is None:
        conn.execute(upd.values(state=S.SENT, sent_at=now, receipt=res.receipt, last_error=None))
        return m, "delivered", base
    errors = [*json.loads(row.errors), [m.channel, res.error]]
    if res.retryable and row.channel_attempts < cfg.retries_per_channel:
        delay = min(cfg.backoff_base_s * 2 ** (row.channel_attempts - 1), cfg.backoff_max_s)
        conn.execute(upd.values(state=S.PENDING, next_attempt_at=now + delay,
                                last_error=res.error, errors=json.dumps(errors)))  # fmt: skip
        return m, "", base
    channels = json.loads(row.channels)
    nxt = row.channel_index + 1
    if nxt < len(channels):
        conn.execute(upd.values(state=S.PENDING, channel_index=nxt, channel=channels[nxt],
                                channel_attempts=0, next_attempt_at=now, last_error=res.error,
                                errors=json.dumps(errors)))  # fmt: skip
        return m, "fallback", {**base, "error": res.error, "next_channel": channels[nxt]}
    conn.execute(upd.values(state=S.FAILED, last_error=res.error, errors=json.dumps(errors)))
    return m, "delivery_failed", {**base, "errors": errors}


def _audit(
    conn: Connection, events: list[tuple[OutboundMessage, str, dict[str, object]]], now: float
) -> None:
    ids = {a for m, kind, _ in events if kind for a in m.alarm_ids}
    if not ids:
        return
    rows = conn.execute(
        sa.select(
            lifecycle_alarms.c.alarm_id, lifecycle_alarms.c.key, lifecycle_alarms.c.severity
        ).where(lifecycle_alarms.c.alarm_id.in_(ids))
    ).all()
    known = {r.alarm_id: r for r in rows}
    out = [
        Event(a, known[a].key, known[a].severity, kind, ACTOR, now,
              {**detail, "summary": len(m.alarm_ids) > 1 or m.message_id.startswith("sum-")})
        for m, kind, detail in events if kind
        for a in m.alarm_ids if a in known
    ]  # fmt: skip
    append(conn, out)


def next_wake(conn: Connection) -> float | None:
    """When the outbox next has work: a due retry or a held alert's summary falling due."""
    retry = conn.execute(
        sa.select(sa.func.min(outbox.c.next_attempt_at)).where(outbox.c.state == S.PENDING)
    ).scalar()
    summary = conn.execute(
        sa.select(sa.func.min(outbox.c.next_attempt_at)).where(outbox.c.state == S.HELD)
    ).scalar()
    times = [t for t in (retry, summary) if t is not None]
    return min(times) if times else None
