"""Several cloud workers' alarm desks on one PostgreSQL: each escalation step and each SMS
happens once, and a worker killed -9 mid-run loses nothing (the others finish its work).

Real parts: PostgreSQL, the Twilio stand-in over HTTP through the real Twilio client, the
workers' heartbeats; one worker is a separate process for the kill.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cloud.brigade import delivery
from cloud.brigade.feed import brigade_messages
from cloud.brigade.sender import BrigadeSender
from cloud.brigade.webhook import WebhookClient
from cloud.lifecycle import Lifecycle, OutboundMessage, PlainRenderer, Target, notices, reports
from cloud.lifecycle import outbox as ob
from cloud.lifecycle.model import Notice, NoticeKind, Rendered
from cloud.lifecycle.overdue import refresh
from cloud.lifecycle.protocols import LiveWorkers
from cloud.lifecycle.reports import HazardKind, HazardReport
from cloud.lifecycle.rule_alarms import AlarmChange, alarm_events, alarms
from cloud.lifecycle.steps import StepContext, Timer, locked
from cloud.lifecycle.tables import (
    Borrowed,
    escalation_steps,
    lifecycle_alarms,
    open_lifecycle_db,
    outbox,
)
from rigs.standins import TwilioStandin
from rigs.standins.brigade import BrigadeStandin
from rigs.standins.twilio_api import IDEMPOTENCY_HEADER
from tests.cloud.lifecycle_worker import (
    MESSAGES_PER_ALARM,
    SID,
    STEPS,
    TOKEN,
    DeviceDispatcher,
    desk_config,
    expected_ids,
    worker_desk,
)
from tests.cloud.test_brigade_sender import FAST, WallClock, setup_life
from tests.cloud.test_lifecycle_fixtures import change, commit, config
from tests.cloud.test_lifecycle_fixtures import rows as select
from tests.postgres import find_bin, postgres_server
from tests.support import need_service, until, wait_until

ALARMS = 50
REPO = Path(__file__).resolve().parents[2]
STEP_KINDS = ("notified", "escalated", "no_targets")


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    if find_bin() is None:
        need_service("PostgreSQL")
    with postgres_server() as url:
        yield url


@pytest.fixture
def url(pg_server: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of its own for each test on the module's server."""
    name = "t_" + request.node.name.lower()[:40].replace("[", "_").replace("]", "")
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    yield pg_server.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def twilio() -> Iterator[TwilioStandin]:
    with TwilioStandin(SID, TOKEN) as standin:
        yield standin


def raise_alarms(url: str, n: int) -> list[AlarmChange]:
    """*n* fire alarms stored as ingest stores them (the desks have not seen them yet)."""
    changes = [change(f"smk-{i:03d}/smoke-fire") for i in range(n)]
    commit(url, changes)
    return changes


def expected_messages(url: str) -> set[str]:
    rows = select(url, sa.select(alarms.c.id, alarms.c.device))
    return {mid for r in rows for mid in expected_ids(r.id, r.device)}


def finished(url: str, n: int) -> bool:
    """Every alarm's chain has run to its end and every message is sent."""
    ended = select(
        url,
        sa.select(sa.func.count()).where(
            lifecycle_alarms.c.next_index.is_(None), lifecycle_alarms.c.next_seq == STEPS
        ),
    )[0][0]
    unsent = select(url, sa.select(sa.func.count()).where(outbox.c.state != "sent"))[0][0]
    total = select(url, sa.select(sa.func.count()).select_from(outbox))[0][0]
    return bool(ended == n and total == n * MESSAGES_PER_ALARM and unsent == 0)


def assert_once_each(url: str, twilio: TwilioStandin, n: int) -> collections.Counter[str]:
    """Each step once, each SMS once per idempotency key, none lost; the posts per key."""
    steps = select(url, sa.select(escalation_steps.c.alarm_id, escalation_steps.c.seq))
    per_alarm = collections.Counter(a for a, _ in steps)
    assert len(per_alarm) == n and set(per_alarm.values()) == {STEPS}
    kinds = select(
        url,
        sa.select(alarm_events.c.alarm_id, alarm_events.c.kind).where(
            alarm_events.c.kind.in_(STEP_KINDS)
        ),
    )
    assert collections.Counter(a for a, _ in kinds) == per_alarm  # one audit event a step
    expected = expected_messages(url)
    assert len(expected) == n * MESSAGES_PER_ALARM
    sent = [m["idempotency_token"] for m in twilio.messages]
    assert len(sent) == len(set(sent)) and set(sent) == expected  # once each, none lost
    delivered = select(
        url,
        sa.select(alarm_events.c.detail).where(
            alarm_events.c.kind == "delivered", alarm_events.c.actor == "outbox"
        ),
    )
    assert len(delivered) == len(expected)  # each recorded once, by one worker
    return collections.Counter(r.headers.get(IDEMPOTENCY_HEADER, "") for r in twilio.requests)


@contextlib.asynccontextmanager
async def desks(url: str, twilio: TwilioStandin, *names: str) -> AsyncIterator[list[Any]]:
    """In-process workers' desks, opened one after another (each creates its tables)."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(worker_desk(url, w, twilio.url)) for w in names]


def no_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_three_workers_run_each_step_and_send_each_sms_once(
    url: str, twilio: TwilioStandin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    changes = raise_alarms(url, ALARMS)
    async with desks(url, twilio, "w-a", "w-b", "w-c") as (a, b, c):
        rng = random.Random(7)
        for i in range(0, ALARMS, 10):  # each batch to its partition's owner; sweeps race it
            rng.choice([a, b, c]).on_changes(changes[i : i + 10])
        await until(lambda: finished(url, ALARMS), 60, "every chain and message done")
        fired = [d.steps_fired for d in (a, b, c)]
    posts = assert_once_each(url, twilio, ALARMS)
    assert set(posts.values()) == {1}  # no message was even posted twice
    assert sum(fired) >= ALARMS * (STEPS - 1)  # timers fire on every worker; steps ran once
    assert no_errors(caplog) == []


def start_worker(url: str, worker: str, twilio_url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.cloud.lifecycle_worker", url, worker, twilio_url],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the desk opens in a second or two; EOF if it died
    assert line.strip() == "ready", f"worker {worker} did not start"
    return proc


def sending_of(url: str, worker: str) -> list[str]:
    q = sa.select(outbox.c.id).where(outbox.c.state == "sending", outbox.c.claimed_by == worker)
    return [r.id for r in select(url, q)]


async def test_a_worker_killed_mid_run_loses_nothing_and_doubles_nothing(
    url: str, twilio: TwilioStandin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    open_lifecycle_db(url).dispose()  # the tables, before three processes race to make them
    changes = raise_alarms(url, ALARMS)
    twilio.delay_all(0.8)  # every send hangs a while: the victim dies with messages in flight
    victim = start_worker(url, "w-c", twilio.url)
    try:
        async with desks(url, twilio, "w-a", "w-b") as (a, _b):
            a.on_changes(changes[: ALARMS // 2])  # the rest wait for a sweep (any worker's)
            in_flight = await until(lambda: sending_of(url, "w-c"), 30, "w-c sending")
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
            twilio.heal()
            await until(lambda: finished(url, ALARMS), 90, "the survivors finishing")
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(10)
        assert victim.stdout is not None
        victim.stdout.close()
    assert_once_each(url, twilio, ALARMS)
    q = sa.select(outbox.c.id, outbox.c.claimed_by).where(outbox.c.id.in_(in_flight))
    taken_over = select(url, q)
    assert len(taken_over) == len(in_flight)
    assert {w for _, w in taken_over} <= {"w-a", "w-b"}  # resent and recorded by survivors
    assert no_errors(caplog) == []


# -- two at once on one alarm ----------------------------------------------------------------
@pytest.fixture
def two(url: str) -> Iterator[tuple[Lifecycle, Lifecycle]]:
    """Two workers' lifecycles, each on its own engine (steps a minute apart: none runs by
    itself during the test)."""
    step = {"wait_s": 60, "target": "next_nearest"}
    cfg = config(policies__standard={"steps": [step, step]})
    ctx = StepContext(cfg, DeviceDispatcher(), PlainRenderer())
    first, second = Lifecycle(open_lifecycle_db(url), ctx), Lifecycle(open_lifecycle_db(url), ctx)
    yield first, second
    first.db.dispose()
    second.db.dispose()


def waiting_on_locks(url: str) -> int:
    q = sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            return int(conn.execute(q).scalar() or 0)
    finally:
        db.dispose()


def race(url: str, hold: Callable[[sa.Connection], object], *ops: Callable[[], Any]) -> list[Any]:
    """Run *ops* in threads at once: all start while *hold* keeps the contended row locked,
    so they meet at the lock and go on together when it is released."""
    results: list[Any] = [None] * len(ops)
    errors: list[BaseException] = []

    def run(i: int, op: Callable[[], Any]) -> None:
        try:
            results[i] = op()
        except BaseException as err:  # the test reports it below
            errors.append(err)

    db = sa.create_engine(url)
    try:
        with db.begin() as conn:
            hold(conn)
            threads = [threading.Thread(target=run, args=(i, op)) for i, op in enumerate(ops)]
            for t in threads:
                t.start()
            wait_until(lambda: waiting_on_locks(url) >= len(ops), 10, "both waiting at the lock")
        for t in threads:
            t.join(10)
    finally:
        db.dispose()
    assert errors == []
    return results


def test_two_workers_firing_the_same_timer_at_once_run_one_step(
    url: str, two: tuple[Lifecycle, Lifecycle]
) -> None:
    first, second = two
    (c,) = raise_alarms(url, 1)
    (timer,) = first.apply_changes([c])
    assert (timer.kind, timer.token) == ("step", 0)
    now = Timer("step", timer.alarm_id, 0, time.time())
    results = race(
        url, lambda conn: locked(conn, timer.alarm_id), lambda: first.fire(now),
        lambda: second.fire(now),
    )  # fmt: skip
    assert sorted(r is None for r in results) == [False, True]  # one ran it, one saw it done
    steps = select(url, sa.select(escalation_steps).where(escalation_steps.c.alarm_id == 1))
    assert [s.seq for s in steps] == [0]
    kinds = select(url, sa.select(alarm_events.c.kind).where(alarm_events.c.kind == "notified"))
    assert len(kinds) == 1
    assert len(select(url, sa.select(outbox))) == 2  # the critical alarm's two nearest, once


def test_two_workers_adopting_the_same_alarm_at_once_adopt_it_once(
    url: str, two: tuple[Lifecycle, Lifecycle]
) -> None:
    first, second = two
    (c,) = raise_alarms(url, 1)

    def hold(conn: sa.Connection) -> None:
        conn.execute(sa.select(alarms).where(alarms.c.key == c.key).with_for_update())

    results = race(url, hold, first.adopt_orphans, lambda: second.apply_changes([c]))
    assert sorted(len(r) for r in results) == [0, 1]  # one adopted it with its timer
    assert len(select(url, sa.select(lifecycle_alarms))) == 1
    steps = select(url, sa.select(alarm_events).where(alarm_events.c.kind.in_(STEP_KINDS)))
    assert steps == []  # and no step ran (due in a minute)


# -- the outbox shared by workers --------------------------------------------------------------
def queue(db: sa.Engine, n: int, first: int = 0) -> None:
    with db.begin() as conn:
        for i in range(first, n):
            ob.enqueue(conn, message_id=f"m{i}", alarm_id=i, target=Target(f"p{i}"),
                       rendered=Rendered("fire", "https://g.cn/m/x"), channels=["sms"],
                       now=time.time(), window_s=60)  # fmt: skip


def claim(db: sa.Engine, worker: str) -> list[OutboundMessage]:
    with db.begin() as conn:
        return ob.claim(conn, time.time(), 10, worker)


def test_two_workers_claiming_the_outbox_at_once_take_each_message_once(url: str) -> None:
    db = open_lifecycle_db(url)
    queue(db, 5)
    second: list[OutboundMessage] = []
    with db.begin() as first_tx:
        first = ob.claim(first_tx, time.time(), 10, "w-a")  # claimed, not committed yet
        t = threading.Thread(target=lambda: second.extend(claim(db, "w-b")))
        t.start()
        t.join(10)  # it skips the rows w-a holds: no wait for w-a's commit
        assert not t.is_alive() and second == []
    assert len(first) == 5 and claim(db, "w-b") == []
    db.dispose()


def test_a_dead_workers_claims_are_resent_by_another_and_recorded_by_it_alone(url: str) -> None:
    db = open_lifecycle_db(url)
    cfg = desk_config().outbox
    queue(db, 2)
    dead = claim(db, "w-a")  # w-a sends, then stops answering (paused past its heartbeat)
    with db.begin() as conn:
        assert ob.recover_orphaned(conn, {"w-b"}) == 2
    again = claim(db, "w-b")
    assert [m.message_id for m in again] == [m.message_id for m in dead]  # the same ids
    with db.begin() as conn:  # w-a wakes up and records what it sent: not its claim now
        assert ob.record(conn, [ob.Result(m, receipt="late") for m in dead], cfg, 1.0, "w-a") == 0
    with db.begin() as conn:
        assert ob.record(conn, [ob.Result(m, receipt="ok") for m in again], cfg, 2.0, "w-b") == 2
    rows = select(url, sa.select(outbox.c.state, outbox.c.receipt, outbox.c.claimed_by))
    assert sorted(tuple(r) for r in rows) == [("sent", "ok", "w-b")] * 2
    db.dispose()


def test_an_alarm_clearing_after_its_claimer_died_mid_send_does_not_cancel_that_message(
    url: str,
) -> None:
    """The provider may already have what the dead worker was sending: it goes out again
    under its key (the provider keeps it once) and is recorded sent, while a message nobody
    handed over yet is cancelled as noise."""
    db = open_lifecycle_db(url)
    cfg = desk_config().outbox
    queue(db, 1)  # m0: w-a claims it, the provider takes it, w-a dies before recording
    claim(db, "w-a")
    queue(db, 2, first=1)  # m1: never handed to anyone
    with db.begin() as conn:
        assert ob.recover_orphaned(conn, {"w-b"}) == 1
        ob.cancel_for(conn, 0, "alarm resolved before delivery")
        ob.cancel_for(conn, 1, "alarm resolved before delivery")
    again = claim(db, "w-b")
    assert [m.message_id for m in again] == ["m0"]
    with db.begin() as conn:
        assert ob.record(conn, [ob.Result(m, receipt="ok") for m in again], cfg, 2.0, "w-b") == 1
    rows = select(url, sa.select(outbox.c.id, outbox.c.state).order_by(outbox.c.id))
    assert [tuple(r) for r in rows] == [("m0", "sent"), ("m1", "failed")]
    db.dispose()


def test_two_workers_folding_one_persons_alerts_at_once_make_one_summary(url: str) -> None:
    db = open_lifecycle_db(url)
    now = time.time()
    with db.begin() as conn:  # three alerts to one person in one window: two are held
        for i in range(3):
            ob.enqueue(conn, message_id=f"m{i}", alarm_id=i, target=Target("p1"),
                       rendered=Rendered("fire", "https://g.cn/m/x"), channels=["sms"],
                       now=now - 120, window_s=60)  # fmt: skip

    def fold() -> int:
        with db.begin() as conn:
            return ob.make_summaries(conn, PlainRenderer(), now, 60)

    def hold(conn: sa.Connection) -> None:
        conn.execute(sa.select(outbox).where(outbox.c.state == "held").with_for_update())

    assert sorted(race(url, hold, fold, fold)) == [0, 1]
    kinds = select(url, sa.select(outbox.c.kind, outbox.c.state).order_by(outbox.c.id))
    assert sorted(tuple(k) for k in kinds) == [
        ("alert", "grouped"), ("alert", "grouped"), ("alert", "pending"), ("summary", "pending")
    ]  # fmt: skip
    db.dispose()


def test_two_workers_flagging_one_breach_at_once_audit_it_once(
    url: str, two: tuple[Lifecycle, Lifecycle]
) -> None:
    (c,) = raise_alarms(url, 1)
    two[0].apply_changes([c])
    late = time.time() + 601  # past the acknowledgement's SLA (600 s), not the resolution's
    results = race(
        url, lambda conn: locked(conn, 1), lambda: refresh(two[0].db, late),
        lambda: refresh(two[1].db, late),
    )  # fmt: skip
    assert sorted(flipped for flipped, _ in results) == [0, 1]
    assert len(select(url, sa.select(alarm_events).where(alarm_events.c.kind == "overdue"))) == 1


def test_one_hazard_report_sent_to_two_workers_at_once_is_one_alarm(
    url: str, two: tuple[Lifecycle, Lifecycle]
) -> None:
    report = HazardReport(report_id="r-0123456789abcdef", reporter="w3",
                          kind=HazardKind.BLOCKED_EXIT)  # fmt: skip
    first, second = two
    stored: list[int] = []

    def hold(conn: sa.Connection) -> None:  # a third worker is storing it right now
        stored.append(int(reports.store(conn, report, time.time()).id))

    results = race(url, hold, lambda: first.report(report), lambda: second.report(report))
    assert results == [(stored[0], []), (stored[0], [])]  # no error: the one alarm


# -- the brigade webhook queue shared by workers ---------------------------------------------
@contextlib.asynccontextmanager
async def brigade_worker(url: str, worker: str, live: LiveWorkers) -> AsyncIterator[None]:
    """One worker's brigade sender on its own engine, sweeping often."""
    db = Borrowed(open_lifecycle_db(url))
    async with WebhookClient(FAST) as client:
        sender = BrigadeSender(db.db, FAST, client, claimer=worker, sweep_s=0.2,
                               live_workers=live)  # fmt: skip
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(sender.run(), name=f"brigade[{worker}]")
            yield
            task.cancel()
    db.close()


def delivered(url: str) -> int:
    q = sa.select(sa.func.count()).where(brigade_messages.c.state == "delivered")
    return int(select(url, q)[0][0])


async def test_two_workers_post_each_brigade_message_once_and_a_dead_workers_too(
    url: str,
) -> None:
    with BrigadeStandin() as standin:
        life, secret = setup_life(url, WallClock(), standin.url + "/hook")
        standin.secrets.append(secret)
        changes = [change(f"smk-1/smoke-fire-{i}", category="fire") for i in range(20)]
        commit(url, changes)
        life.apply_changes(changes)
        with life.db.begin() as conn:  # a third worker claimed these, then died mid-post
            dead = [m.message_id for m in delivery.claim(conn, time.time(), 5, "w-dead")]
        live: LiveWorkers = lambda conn: ["w-a", "w-b"]  # noqa: E731 - the heartbeats' verdict
        async with brigade_worker(url, "w-a", live), brigade_worker(url, "w-b", live):
            await until(lambda: delivered(url) == 20, 20, "every message posted and recorded")
        life.db.dispose()
        assert standin.duplicates == 0  # none posted twice, the dead worker's included
    q = sa.select(brigade_messages.c.message_id, brigade_messages.c.state,
                  brigade_messages.c.claimed_by)  # fmt: skip
    got = {r.message_id: (r.state, r.claimed_by) for r in select(url, q)}
    assert len(got) == 20 and {s for s, _ in got.values()} == {"delivered"}
    assert {w for _, w in got.values()} <= {"w-a", "w-b"}
    assert len(dead) == 5 and {got[m][1] for m in dead} <= {"w-a", "w-b"}  # taken over


def test_two_workers_paging_one_person_at_once_both_queue_it(url: str) -> None:
    db = open_lifecycle_db(url)

    def page(conn: sa.Connection, alarm: int) -> str:
        return ob.enqueue(conn, message_id=f"m{alarm}", alarm_id=alarm, target=Target("p1"),
                          rendered=Rendered("fire", "https://g.cn/m/x"), channels=["sms"],
                          now=time.time(), window_s=60)  # fmt: skip

    def other(alarm: int) -> Callable[[], str]:
        def run() -> str:
            with db.begin() as conn:
                return page(conn, alarm)

        return run

    # a third worker pages p1 first (its window row not committed yet): the two others
    # both see no window, and both open it at once
    race(url, lambda conn: page(conn, 0), other(1), other(2))
    assert len(select(url, sa.select(outbox))) == 3
    db.dispose()


def test_one_notice_told_by_two_workers_at_once_is_queued_once(
    url: str, two: tuple[Lifecycle, Lifecycle]
) -> None:
    first, second = two
    (c,) = raise_alarms(url, 1)
    (timer,) = first.apply_changes([c])
    first.fire(Timer("step", timer.alarm_id, 0, time.time()))  # two people reached
    notice = Notice(NoticeKind.BRIGADE_STATUS, "东区消防", status="en_route", eta_s=300)

    def tell_by(life: Lifecycle) -> Callable[[], list[str]]:
        return lambda: notices.tell(life.db, life.ctx, timer.alarm_id, notice, token="st-1",
                                    actor="brigade:east-fire", now=time.time())  # fmt: skip

    results = race(url, lambda conn: locked(conn, timer.alarm_id), tell_by(first),
                   tell_by(second))  # fmt: skip
    assert sorted(len(told) for told in results) == [0, 2]  # told once, by one of them
    q = sa.select(outbox).where(outbox.c.kind == "notice")
    assert len(select(url, q)) == 2
