"""Escalation on a real AsyncIOScheduler; its timers come back from the lifecycle tables."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

import sqlalchemy as sa

from cloud.lifecycle import AlarmDesk, LifecycleConfig, Outcome, State
from cloud.lifecycle.steps import Timer
from tests.cloud.test_lifecycle_fixtures import (
    RankedDispatcher,
    RecordingSender,
    alarm_id,
    change,
    commit,
    config,
    events_of,
    lifecycle_row,
    outbox_rows,
    rows,
    steps_of,
)
from tests.support import until

WAIT_S = 1.0
STEPS = [
    {"wait_s": 0, "target": "next_nearest"},
    {"wait_s": WAIT_S, "target": "next_nearest"},
    {"wait_s": WAIT_S, "target": "grid_supervisor"},
]


def fast(**more: Any) -> LifecycleConfig:
    return config(policies__standard={"steps": STEPS}, **more)


def desk(url: str, cfg: LifecycleConfig, sender: RecordingSender | None = None) -> AlarmDesk:
    return AlarmDesk(
        url,
        cfg,
        dispatcher=RankedDispatcher(["w1", "w2", "w3", "w4", "w5"]),
        sender=sender or RecordingSender(),
        instance="test-escalation",
    )


async def raised(url: str, d: AlarmDesk, key: str = "smk-1/smoke-fire") -> int:
    c = change(key)
    commit(url, [c])
    d.on_changes([c])
    await until(lambda: rows(url, sa.text(f"select 1 from lifecycle_alarms where key='{key}'")),
                5, "the lifecycle took the raise")  # fmt: skip
    return alarm_id(url, key)


async def test_each_step_fires_at_its_wait_to_the_next_target(url: str):
    async with desk(url, fast()) as d:
        aid = await raised(url, d)
        await until(lambda: len(steps_of(url, aid)) == 3, 10, "three steps")
    s0, s1, s2 = steps_of(url, aid)
    assert [json.loads(s.workers) for s in (s0, s1, s2)] == [
        ["w1", "w2"], ["w3", "w4"], ["supervisor"]
    ]  # fmt: skip
    for before, after in ((s0, s1), (s1, s2)):
        assert WAIT_S - 0.05 <= after.done_at - before.done_at < WAIT_S + 1.0
    assert lifecycle_kinds(url, aid) == ["raise", "notified", "escalated", "escalated"]
    assert lifecycle_row(url, aid).next_index is None  # chain exhausted
    assert sorted(m.worker_id for m in outbox_rows(url)) == [
        "supervisor", "w1", "w2", "w3", "w4"
    ]  # fmt: skip


async def test_acknowledgement_stops_the_chain_and_a_missed_on_site_re_arms_it(url: str):
    on_site_s = 2.0
    cfg = fast(sla__critical={"ack_s": 60, "on_site_s": on_site_s, "resolve_s": 600})
    async with desk(url, cfg) as d:
        aid = await raised(url, d)
        res = await d.acknowledge(aid, "w1", channel="sms")
        acked = time.time()
        assert res.state is State.ACKNOWLEDGED
        assert d.escalator.scheduler.get_job(f"step:{aid}:1") is None
        assert d.escalator.scheduler.get_job(f"ack_timeout:{aid}:1") is not None
        await until(lambda: len(steps_of(url, aid)) == 2, 10, "the re-armed step")
    s1 = steps_of(url, aid)[1]
    assert s1.done_at >= acked + on_site_s - 0.05  # not at WAIT_S: the acknowledgement held it
    assert json.loads(s1.workers) == ["w3", "w4"]  # w1 took it and did not come: others
    assert lifecycle_kinds(url, aid) == [
        "raise",
        "notified",
        "acknowledged",
        "ack_timeout",
        "escalated",
    ]


async def test_arriving_in_time_cancels_the_on_site_timeout(url: str):
    async with desk(url, fast()) as d:
        aid = await raised(url, d)
        await d.acknowledge(aid, "w2")
        await d.arrive(aid, "w2")
        assert d.escalator.scheduler.get_jobs() == []
        await d.resolve(aid, "w2", Outcome.REAL)
    assert lifecycle_row(url, aid).state == State.RESOLVED


async def test_a_restart_mid_wait_runs_the_step_exactly_once(url: str):
    # a wait long enough that a loaded machine still stops the desk inside it
    slow = [{**s, "wait_s": 4.0 if s["wait_s"] else 0} for s in STEPS]
    cfg = config(policies__standard={"steps": slow})
    async with desk(url, cfg) as d:
        aid = await raised(url, d)
        assert d.escalator.scheduler.get_job(f"step:{aid}:1") is not None
    assert len(steps_of(url, aid)) == 1, "step 1 ran before the stop"
    # stopped during the wait: a new desk on the same database picks the timer up
    async with desk(url, cfg) as d2:
        assert d2.escalator.scheduler.get_job(f"step:{aid}:1") is not None
        await until(lambda: len(steps_of(url, aid)) == 2, 15, "step 1 after the restart")
        # the same job firing again (a duplicate, or a late misfire) is a no-op
        assert await _fire(d2, Timer("step", aid, 1, 0.0)) is None
    assert [s.seq for s in steps_of(url, aid)[:2]] == [0, 1]
    assert len(events_of(url, aid, "escalated")) >= 1
    ids = [m.id for m in outbox_rows(url)]
    assert len(ids) == len(set(ids))


async def test_timers_never_touch_the_database_on_the_event_loop(url: str):
    """With the database locked, scheduling and cancelling timers still answer at once:
    APScheduler's job store is in memory (the tables, not the store, are the truth)."""
    async with desk(url, fast()) as d:
        aid = await raised(url, d)
        lock = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            lock.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()
            d.escalator.add([Timer("step", aid, 7, time.time() + 3600)])
            d.escalator.cancel([f"step:{aid}:7"])
            assert time.monotonic() - started < 0.5
        finally:
            lock.execute("ROLLBACK")
            lock.close()


async def test_a_step_missed_while_down_runs_late_once(url: str):
    async with desk(url, fast()) as d:
        aid = await raised(url, d)
        due = lifecycle_row(url, aid).next_due_at
    await until(lambda: time.time() > due + 1.5, 5, "the cloud down past the due time")
    async with desk(url, fast()) as d2:
        await until(lambda: len(steps_of(url, aid)) >= 2, 10, "the late step")
        assert d2.steps_fired >= 1
    assert [s.seq for s in steps_of(url, aid)][:2] == [0, 1]


def lifecycle_kinds(url: str, aid: int) -> list[str]:
    """The alarm's audit trail without the outbox's delivery events."""
    return [e.kind for e in events_of(url, aid) if e.actor != "outbox"]


async def _fire(d: AlarmDesk, timer: Timer) -> Timer | None:
    import asyncio

    return await asyncio.to_thread(d.lifecycle.fire, timer)
