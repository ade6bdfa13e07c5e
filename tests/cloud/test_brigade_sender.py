"""The brigade webhook sender against a real HTTP stand-in brigade (real SQLite, real httpx)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from cloud.brigade.deadletters import dead_letters, redeliver
from cloud.brigade.directory import Brigade, add_brigade
from cloud.brigade.feed import BrigadeFeed, Delivery, brigade_messages, create_feed_tables
from cloud.brigade.sender import BrigadeSender
from cloud.brigade.webhook import WebhookClient
from cloud.config import BrigadeConfig
from cloud.health import Health
from cloud.ingest.devices import upsert_devices
from cloud.lifecycle import Lifecycle, Outcome, PlainRenderer
from cloud.lifecycle.rule_alarms import alarm_events
from cloud.lifecycle.steps import StepContext
from cloud.lifecycle.tables import open_lifecycle_db
from gridalarm.brokers import free_port
from rigs.standins.brigade import BrigadeStandin
from rules import DeviceInfo
from tests.cloud.test_lifecycle_fixtures import (
    Clock,
    RankedDispatcher,
    alarm_id,
    change,
    commit,
    config,
    rows,
)

FAST = BrigadeConfig(backoff_base_s=0.05, backoff_max_s=0.2, timeout_s=2.0)


class WallClock(Clock):
    """The wall clock, moved on by ``skip`` (retries fall due in real time)."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


@pytest.fixture
def standin() -> Iterator[BrigadeStandin]:
    with BrigadeStandin() as s:
        yield s


def setup_life(url: str, clock: Clock, hook: str) -> tuple[Lifecycle, str]:
    db = open_lifecycle_db(url)
    create_feed_tables(db)
    upsert_devices(db, [DeviceInfo("smk-1", "gw-1", "smoke", "g-east-1", "b7", "c-east", 60.0)])
    secret = add_brigade(db, Brigade(id="east-fire", name="东区消防", communities=("c-east",),
                                     webhook_urls=(hook,)))  # fmt: skip
    ctx = StepContext(config(), RankedDispatcher(["w1"]), PlainRenderer(), BrigadeFeed())
    return Lifecycle(db, ctx, clock), secret


@pytest.fixture
def life(url: str, clock: Clock, standin: BrigadeStandin) -> Lifecycle:
    lc, secret = setup_life(url, clock, standin.url + "/hook")
    standin.secrets.append(secret)
    return lc


def raise_fire(url: str, life: Lifecycle, key: str = "smk-1/smoke-fire") -> int:
    c = change(key, category="fire")
    commit(url, [c])
    life.apply_changes([c])
    return alarm_id(url, key)


def confirm(url: str, life: Lifecycle, key: str = "smk-1/smoke-fire") -> None:
    c = change(key, "confirm")
    commit(url, [c])
    life.apply_changes([c])


@contextlib.asynccontextmanager
async def running(
    life: Lifecycle, cfg: BrigadeConfig = FAST, **kw: Any
) -> AsyncIterator[BrigadeSender]:
    async with WebhookClient(cfg) as client:
        sender = BrigadeSender(life.db, cfg, client, clock=life.clock, **kw)
        task = asyncio.create_task(sender.run(), name="test.brigade")
        try:
            yield sender
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def until(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not cond():
            await asyncio.sleep(0.02)


def states(url: str) -> list[tuple[str, str]]:
    q = sa.select(brigade_messages.c.step, brigade_messages.c.state).order_by(
        brigade_messages.c.seq
    )
    return [(r.step, r.state) for r in rows(url, q)]


async def test_a_raise_is_pushed_signed_with_its_idempotency_key_and_the_answer_kept(
    url: str, life: Lifecycle, standin: BrigadeStandin
):
    async with running(life) as sender:
        aid = raise_fire(url, life)
        sender.kick()
        (p,) = await asyncio.to_thread(standin.wait_processed, 1)
        await until(lambda: states(url) == [("raised", "delivered")])
    assert p.key == f"ga-{aid}-raised" and p.content_type == "application/json"
    body = p.json()
    assert body["msg_type"] == "Alert" and body["references"] is None
    assert body["alarm"]["alarm_id"] == aid and body["alarm"]["verification"] == "unverified"
    (row,) = rows(url, sa.select(brigade_messages))
    assert row.answer == "accepted" and json.loads(row.answer_detail) == {"incident": "F-1"}
    kinds = [
        e.kind for e in rows(url, sa.select(alarm_events).where(alarm_events.c.alarm_id == aid))
    ]
    assert "brigade_sent" in kinds and "brigade_answer" in kinds


async def test_an_outage_then_every_step_once_in_order(
    url: str, life: Lifecycle, standin: BrigadeStandin, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="cloud.health")
    health = Health(CollectorRegistry())
    standin.outage(503)
    async with running(life, health=health) as sender:
        aid = raise_fire(url, life)
        sender.kick()
        await until(lambda: len(standin.requests) >= 3)
        confirm(url, life)
        sender.kick()
        await until(lambda: not health.ready(probes=False)[0])
        assert "brigade.east-fire" in health.ready(probes=False)[1]
        standin.restore()
        got = await asyncio.to_thread(standin.wait_processed, 2)
        await until(lambda: health.ready(probes=False)[0])
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("brigade.")]
    assert len(lines) == 2, lines  # once when it starts failing, once when it recovers
    assert "not ready: webhook failing" in lines[0] and "ready again" in lines[1]
    assert [p.key for p in got] == [f"ga-{aid}-raised", f"ga-{aid}-confirmed"]
    assert got[1].json()["msg_type"] == "Update"
    assert got[1].json()["references"] == f"ga-{aid}-raised"
    assert got[1].json()["alarm"]["verification"] == "second_detector"


async def test_a_send_cut_by_a_crash_goes_again_with_the_same_key(
    url: str, life: Lifecycle, standin: BrigadeStandin
):
    aid = raise_fire(url, life)
    with life.db.begin() as conn:  # what a claim commits before its POST; then kill -9
        conn.execute(sa.update(brigade_messages).values(state=Delivery.SENDING, attempts=1))
    async with running(life):
        (p,) = await asyncio.to_thread(standin.wait_processed, 1)
        await until(lambda: states(url) == [("raised", "delivered")])
    assert p.key == f"ga-{aid}-raised"


async def test_a_refusal_is_dead_at_once_and_redelivered_on_demand(
    url: str, life: Lifecycle, standin: BrigadeStandin
):
    standin.outage(400)
    async with running(life) as sender:
        aid = raise_fire(url, life)
        sender.kick()
        await until(lambda: states(url) == [("raised", "dead")])
        (dead,) = dead_letters(life.db)
        assert dead.message_id == f"ga-{aid}-raised" and "HTTP 400" in (dead.last_error or "")
        standin.restore()
        assert redeliver(life.db, life.clock(), message_id=dead.message_id) == 1
        sender.kick()
        await asyncio.to_thread(standin.wait_processed, 1)
        await until(lambda: states(url) == [("raised", "delivered")])
    assert dead_letters(life.db) == []


async def test_retries_end_dead_after_the_max_age(
    url: str, life: Lifecycle, standin: BrigadeStandin, clock: WallClock
):
    standin.outage(hang_up=True)
    async with running(life, FAST.model_copy(update={"max_age_s": 60.0})) as sender:
        raise_fire(url, life)
        sender.kick()
        await until(lambda: len(standin.requests) >= 2)
        clock.offset += 61
        await until(lambda: states(url) == [("raised", "dead")])


async def test_a_rejection_pages_the_duty_commander_once(
    url: str, life: Lifecycle, standin: BrigadeStandin
):
    pages: list[tuple[Any, ...]] = []

    async def page(*args: Any) -> bool:
        pages.append(args)
        return await asyncio.to_thread(life.page_commander, *args)

    aid = raise_fire(url, life)
    standin.reject(f"ga-{aid}-", "not_in_area")
    async with running(life, page=page) as sender:
        sender.kick()
        await until(lambda: len(pages) == 1)
        confirm(url, life)
        sender.kick()
        await asyncio.to_thread(standin.wait_processed, 2)
        await until(lambda: states(url) == [("raised", "delivered"), ("confirmed", "delivered")])
    (row, _) = rows(url, sa.select(brigade_messages).order_by(brigade_messages.c.seq))
    assert row.answer == "rejected" and json.loads(row.answer_detail)["reason"] == "not_in_area"
    paged = rows(url, sa.select(alarm_events).where(alarm_events.c.kind == "brigade_rejected"))
    assert len(paged) == 1  # the commander is paged once per brigade and alarm


async def test_a_false_alarm_is_a_cancel_referencing_the_alert(
    url: str, life: Lifecycle, standin: BrigadeStandin
):
    aid = raise_fire(url, life)
    life.acknowledge(aid, "w1")
    life.resolve(aid, "w1", Outcome.FALSE_ALARM)
    async with running(life):
        got = await asyncio.to_thread(standin.wait_processed, 3)
    assert [p.json()["msg_type"] for p in got] == ["Alert", "Update", "Cancel"]
    assert got[2].json()["references"] == f"ga-{aid}-raised"
    assert got[2].json()["alarm"]["verification"] == "false_alarm"


async def test_a_brigade_that_hangs_holds_up_no_other_brigade(
    url: str, life: Lifecycle, standin: BrigadeStandin
):
    with BrigadeStandin() as slow:
        b = Brigade(id="slow-fire", name="慢", communities=("c-east",),
                    webhook_urls=(slow.url + "/hook",))  # fmt: skip
        slow.secrets.append(add_brigade(life.db, b))
        slow.outage(503, hang_s=1.5)  # past the 1 s timeout
        async with running(life, FAST.model_copy(update={"timeout_s": 1.0})) as sender:
            raise_fire(url, life)
            sender.kick()
            await until(lambda: slow.requests, 5)
            t0 = time.monotonic()
            await asyncio.to_thread(standin.wait_processed, 1)
            assert time.monotonic() - t0 < 0.5


async def test_a_message_waiting_behind_one_in_flight_does_not_spin_the_sender(
    url: str, life: Lifecycle, standin: BrigadeStandin
):
    statements: list[str] = []
    sa.event.listen(life.db, "before_cursor_execute", lambda *a: statements.append(a[2]))
    standin.outage(503, hang_s=0.8)  # each POST hangs past the 0.5 s timeout
    async with running(life, FAST.model_copy(update={"timeout_s": 0.5})) as sender:
        raise_fire(url, life)
        confirm(url, life)  # waits behind the raise, due at once
        sender.kick()
        await until(lambda: len(standin.requests) >= 3)
    assert len(statements) < 300, f"{len(statements)} statements in 3 attempts: a busy loop"


async def test_several_urls_are_tried_in_order(url: str, life: Lifecycle, standin: BrigadeStandin):
    with BrigadeStandin() as second:
        nobody = f"http://127.0.0.1:{free_port()}/hook"  # refuses the connection
        b = Brigade(id="two-urls", name="两个地址", communities=("c-east",),
                    webhook_urls=(nobody, second.url + "/hook"))  # fmt: skip
        second.secrets.append(add_brigade(life.db, b))
        async with running(life) as sender:
            aid = raise_fire(url, life)
            sender.kick()
            (got,) = await asyncio.to_thread(second.wait_processed, 1)
    assert got.key == f"ga-{aid}-raised"
