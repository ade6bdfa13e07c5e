"""The webhook queue's bookkeeping: claim in order per alarm, record how each POST ended.

Every function takes an open transaction. A claim is committed as ``sending`` before the POST,
signed with the claiming worker's id; after that worker's crash ``sending`` is an unknown
outcome and goes out again under the SAME idempotency key (the brigade deduplicates by it):
at its own restart, or from another worker's sweep once it is not alive. A message is
claimed only when every earlier message of the same brigade and alarm is delivered or dead,
so an Update never overtakes its Alert.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cloud.brigade.answers import BrigadeAnswer, record_answer
from cloud.brigade.body import Message
from cloud.brigade.feed import Delivery, brigade_messages
from cloud.config import BrigadeConfig
from cloud.lifecycle.audit import Event, append
from cloud.lifecycle.model import FeedStep
from cloud.lifecycle.tables import lifecycle_alarms

m = brigade_messages
OPEN = (Delivery.PENDING.value, Delivery.SENDING.value)  # still to go: later steps wait


@dataclass(frozen=True, slots=True)
class Sent:
    """How one message's POST ended."""

    message: Message
    delivered: bool = False
    retryable: bool = False  # not delivered: try again later (else: refused for good)
    error: str = ""
    status: int | None = None
    answer: BrigadeAnswer | None = None


def _next_in_line() -> sa.ColumnElement[bool]:
    """Pending, and every earlier message of the same brigade and alarm is done."""
    earlier = sa.alias(m, "earlier")
    blocked = sa.exists().where(
        earlier.c.brigade_id == m.c.brigade_id, earlier.c.alarm_id == m.c.alarm_id,
        earlier.c.seq < m.c.seq, earlier.c.state.in_(OPEN),
    )  # fmt: skip
    return sa.and_(m.c.state == Delivery.PENDING, ~blocked)


def claim(conn: Connection, now: float, limit: int, claimer: str) -> list[Message]:
    """Due messages whose earlier ones (same brigade and alarm) are done, marked ``sending``
    by *claimer*. PostgreSQL: rows another worker is claiming are skipped, not waited for
    (and its earlier message, pending in our snapshot, still holds back the later ones)."""
    rows = conn.execute(
        sa.select(m)
        .where(_next_in_line(), m.c.next_attempt_at <= now)
        .order_by(m.c.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    rows = [r for r in rows if _take(conn, r.seq, claimer)]
    return [
        Message(
            r.seq,
            r.brigade_id,
            r.alarm_id,
            FeedStep(r.step),
            r.message_id,
            r.facts,
            r.created_at,
            _alert_time(conn, r.brigade_id, r.alarm_id, r.created_at),
            r.attempts + 1,
        )
        for r in rows
    ]


def _take(conn: Connection, seq: int, claimer: str) -> bool:
    taken = conn.execute(
        sa.update(m)
        .where(m.c.seq == seq, m.c.state == Delivery.PENDING)
        .values(state=Delivery.SENDING, attempts=m.c.attempts + 1, claimed_by=claimer)
    ).rowcount
    return bool(taken)


def _alert_time(conn: Connection, brigade_id: str, alarm_id: int, default: float) -> float:
    t = conn.execute(
        sa.select(m.c.created_at).where(
            m.c.brigade_id == brigade_id, m.c.alarm_id == alarm_id,
            m.c.step == FeedStep.RAISED.value,
        )
    ).scalar()  # fmt: skip
    return float(t) if t is not None else default


def recover_sending(conn: Connection, claimer: str) -> int:
    """At start: *claimer*'s own ``sending`` rows (and unclaimed ones, from before claims
    were signed) are an unknown outcome; send again, same key, at once."""
    return _reset(conn, sa.or_(m.c.claimed_by == claimer, m.c.claimed_by.is_(None)))


def recover_orphaned(conn: Connection, live: Collection[str]) -> int:
    """``sending`` rows of workers not in *live* (dead mid-POST): send again, same key."""
    return _reset(conn, sa.or_(m.c.claimed_by.is_(None), m.c.claimed_by.not_in(live)))


def _reset(conn: Connection, whose: sa.ColumnElement[bool]) -> int:
    return conn.execute(
        sa.update(m)
        .where(m.c.state == Delivery.SENDING, whose)
        .values(state=Delivery.PENDING, claimed_by=None)
    ).rowcount


def next_wake(conn: Connection) -> float | None:
    """When the earliest message that may go next falls due (one waiting behind a message
    in flight goes when that one ends: its post kicks the sender)."""
    t = conn.execute(sa.select(sa.func.min(m.c.next_attempt_at)).where(_next_in_line())).scalar()
    return float(t) if t is not None else None


def has_open(conn: Connection, brigade_id: str) -> bool:
    """Whether the brigade has messages still to deliver."""
    row = conn.execute(
        sa.select(m.c.seq).where(m.c.brigade_id == brigade_id, m.c.state.in_(OPEN)).limit(1)
    ).first()
    return row is not None


def record(
    conn: Connection, results: list[Sent], cfg: BrigadeConfig, now: float, claimer: str
) -> list[Sent]:
    """Settle each result still ``sending`` under *claimer*'s claim (one taken over from a
    worker judged dead is the new claimer's to record); the delivered ones whose answer
    pages the duty commander."""
    pages: list[Sent] = []
    events: list[tuple[Message, str, dict[str, object]]] = []
    seqs = [res.message.seq for res in results]
    mine = sa.and_(m.c.seq.in_(seqs), m.c.state == Delivery.SENDING, m.c.claimed_by == claimer)
    held = set(conn.execute(sa.select(m.c.seq).where(mine).with_for_update()).scalars())
    for res in results:
        if res.message.seq not in held:
            continue
        kind, detail = _settle(conn, res, cfg, now)
        if kind:
            events.append((res.message, kind, detail))
        if res.delivered and res.answer is not None:
            msg = res.message
            if record_answer(
                conn, msg.brigade_id, msg.alarm_id, res.answer, now=now, message_id=msg.message_id
            ):
                pages.append(res)
    _audit(conn, events, now)
    return pages


def _settle(
    conn: Connection, res: Sent, cfg: BrigadeConfig, now: float
) -> tuple[str, dict[str, object]]:
    msg = res.message
    upd = sa.update(m).where(m.c.seq == msg.seq)
    base: dict[str, object] = {"brigade": msg.brigade_id, "message_id": msg.message_id,
                               "step": msg.step.value, "attempts": msg.attempts}  # fmt: skip
    if res.delivered:
        conn.execute(upd.values(state=Delivery.DELIVERED, delivered_at=now, last_error=None))
        # the brigade is back: what waits for it goes now, not at the end of its back-off
        conn.execute(
            sa.update(m)
            .where(
                m.c.brigade_id == msg.brigade_id,
                m.c.state == Delivery.PENDING,
                m.c.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )
        return "brigade_sent", {**base, "status": res.status}
    too_old = now - msg.created_at >= cfg.max_age_s
    if res.retryable and msg.attempts < cfg.max_attempts and not too_old:
        delay = min(cfg.backoff_base_s * 2 ** (msg.attempts - 1), cfg.backoff_max_s)
        delay *= random.uniform(0.5, 1.0)
        conn.execute(upd.values(state=Delivery.PENDING, next_attempt_at=now + delay,
                                last_error=res.error))  # fmt: skip
        return "", base
    conn.execute(upd.values(state=Delivery.DEAD, last_error=res.error))
    return "brigade_dead", {**base, "error": res.error, "status": res.status}


def _audit(
    conn: Connection, events: list[tuple[Message, str, dict[str, object]]], now: float
) -> None:
    if not events:
        return
    la = lifecycle_alarms
    ids = {msg.alarm_id for msg, _, _ in events}
    rows = conn.execute(
        sa.select(la.c.alarm_id, la.c.key, la.c.severity).where(la.c.alarm_id.in_(ids))
    ).all()
    known = {r.alarm_id: r for r in rows}
    append(conn, [
        Event(msg.alarm_id, known[msg.alarm_id].key, known[msg.alarm_id].severity, kind,
              "brigade_webhook", now, detail)
        for msg, kind, detail in events if msg.alarm_id in known
    ])  # fmt: skip
