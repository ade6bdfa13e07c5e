"""The brigade's live stream on a real server (httpx-sse as the brigade's client): woken by
the desk's commits, its own area only, resumable by Last-Event-ID without a miss or a repeat,
and patient with a hole in the order (a transaction still in flight)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from httpx_sse import EventSource, ServerSentEvent, aconnect_sse

from cloud.brigade.api import event_data
from cloud.brigade.directory import issue_key, revoke_key
from cloud.brigade.feed import Delivery, brigade_messages
from cloud.brigade.keys import Scope
from cloud.brigade.stream import GAP_WAIT_S, IDLE_READ_S, Cursor
from cloud.lifecycle import Outcome
from tests.cloud.test_brigade_support import V1, Cloud, running_cloud
from tests.postgres import find_bin, postgres_server
from tests.support import need_service


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    async with running_cloud(tmp_path) as c:
        yield c


class Events:
    """A stream's events as they come, read by a task of its own into a queue (so a test
    can wait for one with a deadline, or see that none comes, without breaking the stream)."""

    def __init__(self, source: EventSource) -> None:
        self._queue: asyncio.Queue[ServerSentEvent] = asyncio.Queue()
        self._task = asyncio.create_task(self._read(source), name="test.sse")

    async def _read(self, source: EventSource) -> None:
        async for sse in source.aiter_sse():
            self._queue.put_nowait(sse)  # pings are comments: they never come here

    async def take(self, n: int, within_s: float = 5.0) -> list[ServerSentEvent]:
        async with asyncio.timeout(within_s):
            return [await self._queue.get() for _ in range(n)]

    async def none_within(self, seconds: float) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(seconds):
                got = await self._queue.get()
                pytest.fail(f"unexpected event {got}")

    async def ended(self, within_s: float) -> None:
        async with asyncio.timeout(within_s):
            await asyncio.shield(self._task)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@asynccontextmanager
async def stream(
    cloud: Cloud, token: str, headers: dict[str, str] | None = None, **params: Any
) -> AsyncIterator[Events]:
    async with cloud.client(token) as c, aconnect_sse(
        c, "GET", f"{V1}/stream", params=params, headers=headers or {}
    ) as source:  # fmt: skip
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = Events(source)
        try:
            yield events
        finally:
            await events.close()


def seqs(cloud: Cloud, brigade: str) -> list[tuple[int, str]]:
    m = brigade_messages
    q = sa.select(m.c.seq, m.c.step).where(m.c.brigade_id == brigade).order_by(m.c.seq)
    return [(r.seq, r.step) for r in cloud.rows(q)]


async def test_a_new_alarm_arrives_at_once_woken_by_the_desk_not_by_polling(cloud: Cloud) -> None:
    async with stream(cloud, cloud.keys.east) as events:
        start = time.monotonic()
        aid = await cloud.raise_fire("smk-1/smoke-fire")
        (sse,) = await events.take(1, within_s=IDLE_READ_S / 2)
        took = time.monotonic() - start
    assert took < IDLE_READ_S / 2
    ((seq, step),) = seqs(cloud, "east-fire")
    assert (sse.id, sse.event) == (str(seq), step) == (sse.id, "raised")
    data = event_data(sse.data)
    assert data.alarm_id == aid and data.message_id == f"ga-{aid}-raised"
    assert data.alarm.place.address == "思明路 1 号" and data.alarm.verification == "unverified"


async def test_a_reconnecting_brigade_misses_nothing_and_repeats_nothing(cloud: Cloud) -> None:
    async with stream(cloud, cloud.keys.east, after=0) as events:
        aid = await cloud.raise_fire("smk-1/smoke-fire")
        await cloud.raise_fire("smk-9/smoke-fire")  # the other area's: never in this stream
        await cloud.desk.acknowledge(aid, "w1", "web")
        got = await events.take(2)
    assert [e.event for e in got] == ["raised", "acknowledged"]
    last = got[-1].id

    await cloud.desk.arrive(aid, "w1", "web")  # while the brigade is away
    await cloud.desk.verify(aid, "w1", "web")
    await cloud.desk.resolve(aid, "w1", Outcome.REAL)
    async with stream(cloud, cloud.keys.east, {"Last-Event-ID": last}) as events:
        missed = await events.take(3)
        nxt = await cloud.raise_fire("smk-1/smoke-fire")
        (fresh,) = await events.take(1)
        await events.none_within(0.5)
    assert [e.event for e in missed] == ["on_site", "verified", "resolved"]
    assert event_data(fresh.data).alarm_id == nxt and fresh.event == "raised"  # no repeat between
    east = seqs(cloud, "east-fire")
    assert [(int(e.id), e.event) for e in [*got, *missed, fresh]] == east

    async with stream(cloud, cloud.keys.west, after=0) as events:
        (west,) = await events.take(1)
        assert west.event == "raised" and event_data(west.data).alarm.place.grid == "g-west-1"
    async with stream(cloud, cloud.keys.east, after=0) as events:
        again = await events.take(len(east))
    assert [(int(e.id), e.event) for e in again] == east  # ?after=0: everything kept, in order


async def test_a_bad_resume_point_is_400(cloud: Cloud) -> None:
    async with cloud.client(cloud.keys.east) as c:
        r = await c.get(f"{V1}/stream", headers={"Last-Event-ID": "x1"})
        assert r.status_code == 400
        assert (await c.get(f"{V1}/stream", params={"after": -1})).status_code == 422


def insert(cloud: Cloud, seq: int, aid: int, step: str) -> None:
    with cloud.db.begin() as conn:
        conn.execute(sa.insert(brigade_messages).values(
            seq=seq, brigade_id="east-fire", alarm_id=aid, step=step,
            message_id=f"ga-{aid}-{step}", facts=json.dumps({"alarm_id": aid}),
            created_at=time.time(), state=Delivery.PULL, attempts=0,
            next_attempt_at=time.time(),
        ))  # fmt: skip
    cloud.portal.bell.ring()


async def test_a_hole_in_the_order_is_waited_for_before_the_stream_passes_it(cloud: Cloud):
    # As with PostgreSQL: seq 2 is visible while seq 1's transaction has not committed yet.
    async with stream(cloud, cloud.keys.east, after=0) as events:
        insert(cloud, 2, 7, "confirmed")
        await events.none_within(GAP_WAIT_S / 4)  # seq 2 waits for seq 1
        insert(cloud, 1, 7, "raised")  # the late transaction commits within the wait
        got = await events.take(2)
        assert [(e.id, e.event) for e in got] == [("1", "raised"), ("2", "confirmed")]
        start = time.monotonic()
        insert(cloud, 4, 7, "acknowledged")  # seq 3 never comes (rolled back)
        (late,) = await events.take(1, within_s=GAP_WAIT_S * 3)
        assert (late.id, late.event) == ("4", "acknowledged")
        assert time.monotonic() - start >= GAP_WAIT_S * 0.9


async def test_a_stream_ends_when_its_key_is_revoked(
    cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    new = issue_key(cloud.db, "east-fire", [Scope.ALARMS_READ], time.time(), None)
    async with stream(cloud, new.token) as events:
        revoke_key(cloud.db, new.key_id, time.time())
        await events.ended(within_s=IDLE_READ_S * 3)
    lines = [r.getMessage() for r in caplog.records if r.name == "cloud.brigade.guard"]
    assert len(lines) == 1 and new.key_id in lines[0] and "revoked" in lines[0]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if find_bin() is None:
        need_service("PostgreSQL")
    with postgres_server() as url:
        yield url


async def test_on_postgresql_a_row_that_commits_late_is_not_skipped(
    pg_url: str, tmp_path: Path
) -> None:
    async with running_cloud(tmp_path, pg_url) as cloud:
        aid = await cloud.raise_fire("smk-1/smoke-fire")
        async with stream(cloud, cloud.keys.east) as events:
            with cloud.db.connect() as late:  # takes the next seq, commits after a later one
                tx = late.begin()
                late.execute(sa.insert(brigade_messages).values(
                    brigade_id="east-fire", alarm_id=aid, step="confirmed",
                    message_id=f"ga-{aid}-confirmed", facts="{}", created_at=time.time(),
                    state=Delivery.PULL, attempts=0, next_attempt_at=time.time(),
                ))  # fmt: skip
                await cloud.desk.acknowledge(aid, "w1", "web")  # commits seq+1, rings
                await events.none_within(0.5)  # it waits for the hole below (GAP_WAIT_S)
                tx.commit()
            cloud.portal.bell.ring()
            got = await events.take(2)
        assert [e.event for e in got] == ["confirmed", "acknowledged"]
        assert [(int(e.id), e.event) for e in got] == seqs(cloud, "east-fire")[1:]


def test_the_cursor_waits_out_a_hole_then_passes_it() -> None:
    c = Cursor(10)
    assert c.advance([11, 12], now=0.0) == 12
    assert c.advance([14, 15], now=1.0) == 12  # 13 missing: wait
    assert c.advance([14, 15], now=1.0 + GAP_WAIT_S / 2) == 12
    assert c.advance([13, 14, 15], now=1.0 + GAP_WAIT_S / 2) == 15  # it came: in order
    assert c.holes == {}
    assert c.advance([17], now=5.0) == 15
    assert c.advance([17], now=5.0 + GAP_WAIT_S) == 17  # it never came: passed, once
    assert c.holes == {}
    assert c.advance([10_017], now=9.0) == 17  # 10 000 missing (deleted): one hole, one wait
    assert c.advance([10_017, 10_018], now=9.0 + GAP_WAIT_S) == 10_018
    assert c.holes == {}
