"""The dead-letter list: brigade messages that were refused or ran out of retries.

``dead_letters`` lists them (the CLI and the brigade admin API); ``redeliver`` puts them back
in the queue under the SAME idempotency key, so a brigade that had processed one after all
does not act on it twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.brigade.feed import Delivery, brigade_messages

m = brigade_messages


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message given up on, and why."""

    seq: int
    brigade_id: str
    alarm_id: int
    step: str
    message_id: str
    created_at: float
    attempts: int
    last_error: str | None


def dead_letters(db: Engine, brigade_id: str | None = None) -> list[DeadLetter]:
    """Dead messages, oldest first; of one brigade when given."""
    q = sa.select(m).where(m.c.state == Delivery.DEAD).order_by(m.c.seq)
    if brigade_id is not None:
        q = q.where(m.c.brigade_id == brigade_id)
    with db.connect() as conn:
        return [
            DeadLetter(
                r.seq,
                r.brigade_id,
                r.alarm_id,
                r.step,
                r.message_id,
                r.created_at,
                r.attempts,
                r.last_error,
            )
            for r in conn.execute(q)
        ]


def redeliver(
    db: Engine, now: float, *, message_id: str | None = None, brigade_id: str | None = None
) -> int:
    """Dead messages back to pending, due now (one *message_id*, else all, of *brigade_id* if
    given); how many. Their retries count from zero again, and their age from *now*."""
    where = m.c.state == Delivery.DEAD
    if message_id is not None:
        where = sa.and_(where, m.c.message_id == message_id)
    if brigade_id is not None:
        where = sa.and_(where, m.c.brigade_id == brigade_id)
    with db.begin() as conn:
        return conn.execute(
            sa.update(m).where(where).values(
                state=Delivery.PENDING, attempts=0, next_attempt_at=now, last_error=None,
                created_at=now,
            )
        ).rowcount  # fmt: skip
