"""The brigades' message queue, filled by the lifecycle's own transactions (real SQLite file)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from cloud.brigade.directory import Brigade, add_brigade
from cloud.brigade.facts import Verification
from cloud.brigade.feed import BrigadeFeed, Delivery, brigade_messages, create_feed_tables
from cloud.lifecycle import Lifecycle, Outcome, PlainRenderer
from cloud.lifecycle.model import FeedStep
from cloud.lifecycle.steps import StepContext
from cloud.lifecycle.tables import open_lifecycle_db
from tests.cloud.test_brigade_support import EAST as SUPPORT_EAST
from tests.cloud.test_brigade_support import WEST as SUPPORT_WEST
from tests.cloud.test_brigade_support import seed_district
from tests.cloud.test_lifecycle_fixtures import (
    T0,
    Clock,
    RankedDispatcher,
    alarm_id,
    change,
    commit,
    config,
    rows,
)

EAST = Brigade.model_validate(
    {**SUPPORT_EAST.model_dump(), "webhook_urls": ["http://127.0.0.1:9/hook"]}
)
WEST = SUPPORT_WEST  # pulls: no webhook


@pytest.fixture
def feed_life(url: str, clock: Clock) -> Lifecycle:
    db = open_lifecycle_db(url)
    create_feed_tables(db)
    seed_district(db)
    add_brigade(db, EAST)
    add_brigade(db, WEST)
    ctx = StepContext(config(), RankedDispatcher(["w1", "w2"]), PlainRenderer(), BrigadeFeed())
    return Lifecycle(db, ctx, clock)


def raise_fire(url: str, life: Lifecycle, key: str, category: str = "fire") -> int:
    c = change(key, category=category)
    commit(url, [c])
    life.apply_changes([c])
    return alarm_id(url, key)


def messages(url: str, brigade: str | None = None) -> list[Any]:
    q = sa.select(brigade_messages).order_by(brigade_messages.c.seq)
    if brigade is not None:
        q = q.where(brigade_messages.c.brigade_id == brigade)
    return rows(url, q)


def test_a_fire_is_queued_at_once_for_the_brigade_of_its_area_only(url: str, feed_life: Lifecycle):
    aid = raise_fire(url, feed_life, "smk-1/smoke-fire")
    (m,) = messages(url)
    assert (m.brigade_id, m.alarm_id, m.step) == ("east-fire", aid, "raised")
    assert m.message_id == f"ga-{aid}-raised"
    assert m.state == Delivery.PENDING and m.next_attempt_at == T0
    facts = json.loads(m.facts)
    assert facts["verification"] == Verification.UNVERIFIED
    assert facts["place"]["address"] == "思明路 1 号" and facts["place"]["floor"] == "3"
    assert facts["place"]["lat"] == pytest.approx(24.45)
    assert facts["owner"] == {"name": "早餐店 王", "phone": "+8613800000001"}
    assert facts["detector"]["type"] == "smoke" and facts["responder"] is None


def test_a_brigade_without_a_webhook_gets_rows_to_pull(url: str, feed_life: Lifecycle):
    raise_fire(url, feed_life, "smk-9/smoke-fire")
    (m,) = messages(url)
    assert (m.brigade_id, m.state) == ("west-fire", Delivery.PULL)


def test_other_categories_never_reach_a_brigade(url: str, feed_life: Lifecycle):
    raise_fire(url, feed_life, "smk-1/flood-level", category="flood")
    assert messages(url) == []


def test_each_step_once_in_order_with_the_facts_of_its_moment(
    url: str, feed_life: Lifecycle, clock: Clock
):
    aid = raise_fire(url, feed_life, "smk-1/smoke-fire")
    confirm = change("smk-1/smoke-fire", "confirm")
    commit(url, [confirm])
    feed_life.apply_changes([confirm])
    feed_life.apply_changes([confirm])  # a repeated batch adds nothing
    clock.now += 30
    feed_life.acknowledge(aid, "w1")
    feed_life.arrive(aid, "w1")
    feed_life.arrive(aid, "w1")  # a repeat: no change, no message
    feed_life.verify(aid, "w1")
    feed_life.verify(aid, "w1")
    feed_life.resolve(aid, "w1", Outcome.REAL)
    got = messages(url, "east-fire")
    assert [m.step for m in got] == [
        "raised", "confirmed", "acknowledged", "on_site", "verified", "resolved",
    ]  # fmt: skip
    facts = [json.loads(m.facts) for m in got]
    assert [f["verification"] for f in facts] == [
        "unverified", "second_detector", "second_detector", "second_detector",
        "worker_on_site", "worker_on_site",
    ]  # fmt: skip
    assert facts[2]["responder"]["phone"] == "+8613900000001"
    assert facts[2]["responder"]["status"] == "en_route"
    assert facts[3]["responder"]["status"] == "on_site"
    assert facts[5]["state"] == "resolved" and facts[5]["outcome"] == "real"


def test_a_false_alarm_is_its_own_step_and_counts_in_the_detectors_history(
    url: str, feed_life: Lifecycle, clock: Clock
):
    first = raise_fire(url, feed_life, "smk-1/smoke-fire")
    feed_life.resolve(first, "w1", Outcome.FALSE_ALARM)
    (m,) = [m for m in messages(url) if m.step == "false_alarm"]
    assert json.loads(m.facts)["verification"] == Verification.FALSE_ALARM
    clock.now += 60
    second = raise_fire(url, feed_life, "smk-1/smoke-fire")
    (raised,) = [m for m in messages(url) if m.alarm_id == second]
    assert json.loads(raised.facts)["detector"]["false_alarms_90d"] == 1


def test_a_brigade_added_mid_incident_hears_no_updates_of_an_alert_it_never_had(
    url: str, feed_life: Lifecycle
):
    aid = raise_fire(url, feed_life, "smk-1/smoke-fire")
    late = Brigade(id="late-fire", name="后来的", communities=("c-east",))
    add_brigade(feed_life.db, late)
    feed_life.acknowledge(aid, "w1")
    assert messages(url, "late-fire") == []
    assert [m.step for m in messages(url, "east-fire")] == ["raised", "acknowledged"]


def test_a_step_whose_transaction_fails_leaves_no_message(url: str, feed_life: Lifecycle):
    aid = raise_fire(url, feed_life, "smk-1/smoke-fire")
    with pytest.raises(RuntimeError), feed_life.db.begin() as conn:
        BrigadeFeed().record(conn, aid, FeedStep.ACKNOWLEDGED, T0)
        assert len(list(conn.execute(sa.select(brigade_messages)))) == 2
        raise RuntimeError("the lifecycle step failed after the feed wrote")
    assert [m.step for m in messages(url)] == ["raised"]
