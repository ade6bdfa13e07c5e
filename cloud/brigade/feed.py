"""The brigades' durable message queue, filled inside the lifecycle's own transactions.

Each fire-class alarm's steps (raised, confirmed, a worker on the way / on site / confirming
it, false alarm, resolved) become one row per brigade whose area holds the alarm: written in
the same transaction as the step, so a crash loses none and a repeat (unique per brigade,
alarm and step) adds none. The row keeps the facts as they were (``facts.snapshot``), so a
retry sends the same bytes. ``seq`` orders everything: it is the live stream's event id, and
webhooks go out per alarm in ``seq`` order.

A brigade hears an alarm's later steps only if it heard its raise (a brigade added during an
incident is not sent Updates of an Alert it never had).
"""

from __future__ import annotations

import enum
import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloud.brigade import directory
from cloud.brigade.facts import area_of, gather, snapshot
from cloud.ingest import devices as ingest_devices
from cloud.lifecycle.columns import add_on_open
from cloud.lifecycle.model import FeedStep
from cloud.lifecycle.tables import lifecycle_alarms
from cloud.registry.tables import create_registry_tables
from rules.meaning import Category

logger = logging.getLogger(__name__)

metadata = directory.metadata


class Delivery(enum.StrEnum):
    """A message's way to the brigade's webhook."""

    PENDING = "pending"  # due at next_attempt_at
    SENDING = "sending"  # committed before the POST: after a crash, resent with the same key
    DELIVERED = "delivered"  # the brigade answered 2xx
    DEAD = "dead"  # retries exhausted or refused for good: on the dead-letter list
    PULL = "pull"  # the brigade has no webhook: it reads the API or the stream


brigade_messages = sa.Table(
    "brigade_messages",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("brigade_id", sa.String(64), nullable=False),
    sa.Column("alarm_id", sa.Integer, nullable=False),
    sa.Column("step", sa.String(16), nullable=False),
    sa.Column("message_id", sa.String(96), nullable=False),  # the idempotency key
    sa.Column("facts", sa.Text, nullable=False),  # BrigadeAlarm JSON as it was at the step
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("delivered_at", sa.Float, nullable=True),
    sa.Column("answer", sa.String(16), nullable=True),  # accepted | rejected (their reply)
    sa.Column("answer_detail", sa.Text, nullable=True),  # JSON: incident number or reason
    # the cloud worker whose claim made it ``sending``; a dead worker's go back to pending
    sa.Column("claimed_by", sa.String(128), nullable=True),
    sa.UniqueConstraint("brigade_id", "alarm_id", "step", name="one_message_per_step"),
    sa.Index("brigade_messages_due", "state", "next_attempt_at"),
    sa.Index("brigade_messages_stream", "brigade_id", "seq"),
    sa.Index("brigade_messages_alarm", "alarm_id", "brigade_id", "seq"),
)
add_on_open(brigade_messages, "claimed_by")


def message_id(alarm_id: int, step: FeedStep) -> str:
    """The idempotency key of an alarm's step: the same for every retry and every brigade."""
    return f"ga-{alarm_id}-{step.value}"


def create_feed_tables(db: Engine) -> None:
    """The tables the feed reads and writes (idempotent)."""
    create_registry_tables(db)
    ingest_devices.metadata.create_all(db)
    metadata.create_all(db)


class BrigadeFeed:
    """The lifecycle's ``AlarmFeed``: queues each fire-class alarm's steps for its brigades."""

    def record(self, conn: Connection, alarm_id: int, step: FeedStep, now: float) -> None:
        la = lifecycle_alarms
        row = conn.execute(
            sa.select(la.c.category, la.c.device).where(la.c.alarm_id == alarm_id)
        ).first()
        if row is None or row.category != Category.FIRE:
            return
        community, grid = area_of(conn, row.device)
        targets = [b for b in _brigades(conn) if b.covers(community, grid)]
        if step is not FeedStep.RAISED:
            heard = set(conn.execute(
                sa.select(brigade_messages.c.brigade_id).where(
                    brigade_messages.c.alarm_id == alarm_id,
                    brigade_messages.c.step == FeedStep.RAISED.value,
                )
            ).scalars())  # fmt: skip
            targets = [b for b in targets if b.id in heard]
        if not targets:
            return
        facts = gather(conn, alarm_id, now)
        if facts is None:
            return
        body = snapshot(facts)
        for b in targets:
            _insert(conn, b, alarm_id, step, body=body, now=now)
        logger.info("alarm %d: %s queued for brigades %s", alarm_id, step.value,
                    ", ".join(b.id for b in targets))  # fmt: skip


def _brigades(conn: Connection) -> list[directory.Brigade]:
    ids = conn.execute(sa.select(directory.brigades.c.id)).scalars().all()
    return [directory.brigade(conn, i) for i in ids]


def _insert(
    conn: Connection, b: directory.Brigade, alarm_id: int, step: FeedStep, *, body: str,
    now: float,
) -> None:  # fmt: skip
    m = brigade_messages
    exists = conn.execute(
        sa.select(m.c.seq).where(m.c.brigade_id == b.id, m.c.alarm_id == alarm_id,
                                 m.c.step == step.value)
    ).first()  # fmt: skip
    if exists is not None:
        return  # a repeat of the step: the brigade was told once
    conn.execute(
        sa.insert(m).values(
            brigade_id=b.id, alarm_id=alarm_id, step=step.value,
            message_id=message_id(alarm_id, step), facts=body, created_at=now,
            state=Delivery.PENDING if b.webhook_urls else Delivery.PULL, attempts=0,
            next_attempt_at=now,
        )
    )  # fmt: skip
