"""Claims on PostgreSQL with two workers at once: a message is taken by one of them only."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from cloud.brigade.body import Message
from cloud.brigade.delivery import claim
from cloud.brigade.feed import Delivery, brigade_messages, create_feed_tables
from cloud.database import open_database
from tests.postgres import find_bin, postgres_server
from tests.support import need_service, wait_until


@pytest.fixture(scope="module")
def pg() -> Iterator[sa.Engine]:
    if find_bin() is None:
        need_service("PostgreSQL")
    with postgres_server() as url:
        db = open_database(url)
        create_feed_tables(db)
        yield db
        db.dispose()


def pending(alarm: int) -> dict[str, object]:
    return {
        "brigade_id": "east-fire", "alarm_id": alarm, "step": "raised",
        "message_id": f"ga-{alarm}-raised", "facts": "{}", "created_at": 1.0,
        "state": Delivery.PENDING, "attempts": 0, "next_attempt_at": 1.0,
    }  # fmt: skip


def waiting_on_a_lock(db: sa.Engine) -> bool:
    with db.connect() as conn:
        n = conn.execute(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        ).scalar()
    return bool(n)


def test_two_workers_claiming_at_once_take_each_message_once(pg: sa.Engine) -> None:
    with pg.begin() as conn:
        conn.execute(sa.insert(brigade_messages), [pending(a) for a in range(1, 6)])
    second: list[Message] = []
    with pg.begin() as first_tx:
        first = claim(first_tx, 10.0, 10)  # taken, not yet committed
        t = threading.Thread(target=lambda: second.extend(_claim(pg)), name="second-worker")
        t.start()
        # the second worker's claim waits for our commit
        wait_until(lambda: waiting_on_a_lock(pg), 10, "the second claim to wait on the first")
    t.join(10)
    assert len(first) == 5 and second == []


def _claim(db: sa.Engine) -> list[Message]:
    with db.begin() as conn:
        return claim(conn, 10.0, 10)
