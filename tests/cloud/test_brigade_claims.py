"""Claims on PostgreSQL with two workers at once: a message is taken by one of them only;
a dead worker's claims are taken over."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from cloud.brigade.body import Message
from cloud.brigade.delivery import Sent, claim, record, recover_orphaned, recover_sending
from cloud.brigade.feed import Delivery, brigade_messages, create_feed_tables
from cloud.config import BrigadeConfig
from cloud.database import open_database
from cloud.lifecycle.tables import open_lifecycle_db
from tests.postgres import find_bin, postgres_server
from tests.support import need_service


@pytest.fixture(scope="module")
def pg() -> Iterator[sa.Engine]:
    if find_bin() is None:
        need_service("PostgreSQL")
    with postgres_server() as url:
        db = open_database(url)
        create_feed_tables(db)
        open_lifecycle_db(url).dispose()  # the audit of a recorded result reads its alarms
        yield db
        db.dispose()


def pending(alarm: int) -> dict[str, object]:
    return {
        "brigade_id": "east-fire", "alarm_id": alarm, "step": "raised",
        "message_id": f"ga-{alarm}-raised", "facts": "{}", "created_at": 1.0,
        "state": Delivery.PENDING, "attempts": 0, "next_attempt_at": 1.0,
    }  # fmt: skip


def test_two_workers_claiming_at_once_take_each_message_once(pg: sa.Engine) -> None:
    with pg.begin() as conn:
        conn.execute(sa.delete(brigade_messages))
        conn.execute(sa.insert(brigade_messages), [pending(a) for a in range(1, 6)])
    with pg.begin() as first_tx:
        first = claim(first_tx, 10.0, 10, "worker-a")  # taken, not yet committed
        # the second worker skips the rows the first holds: it neither waits nor takes them
        second = _claim(pg, "worker-b")
    assert len(first) == 5 and second == []
    assert _claim(pg, "worker-b") == []  # committed `sending`: not pending any more
    with pg.connect() as conn:
        claimers = conn.execute(sa.select(brigade_messages.c.claimed_by).distinct()).scalars()
        assert list(claimers) == ["worker-a"]


def test_a_dead_workers_sending_rows_go_back_to_pending_and_a_live_ones_stay(
    pg: sa.Engine,
) -> None:
    with pg.begin() as conn:
        conn.execute(sa.delete(brigade_messages))
        conn.execute(sa.insert(brigade_messages), [pending(a) for a in range(1, 5)])
    with pg.begin() as conn:
        assert len(claim(conn, 10.0, 2, "worker-a")) == 2
    with pg.begin() as conn:
        assert len(claim(conn, 10.0, 2, "worker-b")) == 2
    with pg.begin() as conn:
        assert recover_orphaned(conn, {"worker-b"}) == 2  # worker-a died
    again = _claim(pg, "worker-b")
    assert sorted(m.alarm_id for m in again) == [1, 2]
    assert [m.attempts for m in again] == [2, 2]  # the same rows, same idempotency keys
    assert {m.message_id for m in again} == {"ga-1-raised", "ga-2-raised"}
    with pg.begin() as conn:  # worker-b restarts: its own previous run's claims come back
        assert recover_sending(conn, "worker-b") == 4


def _claim(db: sa.Engine, claimer: str) -> list[Message]:
    with db.begin() as conn:
        return claim(conn, 10.0, 10, claimer)


def test_a_late_record_of_a_claim_taken_over_is_left_to_the_new_claimer(pg: sa.Engine) -> None:
    with pg.begin() as conn:
        conn.execute(sa.delete(brigade_messages))
        conn.execute(sa.insert(brigade_messages), [pending(1)])
    (dead,) = _claim(pg, "worker-a")  # posted, then worker-a was judged dead
    with pg.begin() as conn:
        assert recover_orphaned(conn, {"worker-b"}) == 1
    (again,) = _claim(pg, "worker-b")
    with pg.begin() as conn:  # worker-a comes back and records its post: not its claim now
        record(conn, [Sent(dead, delivered=True, status=200)], BrigadeConfig(), 20.0, "worker-a")
    with pg.connect() as conn:
        row = conn.execute(sa.select(brigade_messages)).one()
    assert (row.state, row.claimed_by) == ("sending", "worker-b")
    with pg.begin() as conn:
        record(conn, [Sent(again, delivered=True, status=200)], BrigadeConfig(), 21.0, "worker-b")
    with pg.connect() as conn:
        row = conn.execute(sa.select(brigade_messages)).one()
    assert (row.state, row.delivered_at) == ("delivered", 21.0)
