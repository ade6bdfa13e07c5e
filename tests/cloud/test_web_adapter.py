"""The page and the SMS webhook over the real lifecycle ``AlarmDesk`` and registry tables."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from cloud.lifecycle import AlarmDesk, Outcome, State
from cloud.lifecycle.tables import lifecycle_alarms
from cloud.registry import tables as registry
from cloud.web import LifecycleWorkerDesk, create_app
from tests.cloud.test_lifecycle_fixtures import (
    RankedDispatcher,
    RecordingSender,
    change,
    commit,
    config,
    rows,
)
from tests.cloud.test_web_support import TWILIO_TOKEN, signer
from tests.support import until

PUBLIC = "https://alarm.example.cn"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class World:
    def __init__(self, desk: AlarmDesk, url: str, alarm_id: int, client: httpx.AsyncClient):
        self.desk, self.url, self.alarm_id, self.client = desk, url, alarm_id, client

    def token(self, worker: str = "w1") -> str:
        return signer().make(
            worker, str(self.alarm_id), datetime.fromtimestamp(time.time() + 600, UTC)
        )

    async def sms(self, phone: str, body: str) -> str:
        form = {"From": phone, "Body": body, "To": "+8610000000"}
        sig = RequestValidator(TWILIO_TOKEN).compute_signature(f"{PUBLIC}/twilio/sms", form)
        r = await self.client.post("/twilio/sms", data=form, headers={"X-Twilio-Signature": sig})
        assert r.status_code == 200, r.text
        return r.text


def seed_registry(url: str) -> sa.Engine:
    db = sa.create_engine(url)
    registry.create_registry_tables(db)
    with db.begin() as conn:
        conn.execute(sa.insert(registry.workers), [
            {"id": "w1", "name": "王芳", "phone": "+8613800000001", "locale": "zh-CN",
             "role": "worker", "community": "c-1"},
            {"id": "w2", "name": "Alice", "phone": "+447700900002", "locale": "en",
             "role": "worker", "community": "c-1"},
        ])  # fmt: skip
        conn.execute(sa.insert(registry.device_locations).values(
            device="smk-42", lat=24.49, lon=118.12, address="湖滨路 12 号", building="7号楼",
            floor="1", owner="包饼店", owner_phone="+8659212345678",
        ))  # fmt: skip
    return db


@contextlib.asynccontextmanager
async def notified_alarm(
    tmp_path: Path, instance: str
) -> AsyncIterator[tuple[AlarmDesk, sa.Engine, str, int]]:
    """A real lifecycle desk over a seeded registry with one notified alarm:
    (desk, registry engine, database URL, alarm id)."""
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    reg = seed_registry(url)
    c = change("smk-42/smoke-fire", severity="warning")
    commit(url, [c])
    async with AlarmDesk(
        url, config(), dispatcher=RankedDispatcher(["w1"]), sender=RecordingSender(),
        instance=f"{instance}-{tmp_path.name}",
    ) as desk:  # fmt: skip
        desk.on_changes([c])
        found = await until(
            lambda: rows(url, sa.select(lifecycle_alarms.c.alarm_id)), 5, "the alarm notified"
        )
        yield desk, reg, url, int(found[0][0])
    reg.dispose()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with notified_alarm(tmp_path, "web") as (desk, reg, url, alarm_id):
        app = create_app(
            LifecycleWorkerDesk(desk, reg), signer(), twilio_auth_token=TWILIO_TOKEN,
            public_base_url=PUBLIC, clock=time.time,
        )  # fmt: skip
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as client:
            yield World(desk, url, alarm_id, client)


def state(w: World) -> State:
    return State(w.desk.lifecycle.state(w.alarm_id)["state"])


async def test_page_shows_the_real_alarm_place_and_history(world: World) -> None:
    r = await world.client.get(f"/m/{world.token()}")
    assert r.status_code == 200
    for text in (
        "疑似火警",
        "smk-42",
        "湖滨路 12 号",
        "tel:+8659212345678",
        'data-kind="notified"',
    ):
        assert text in r.text, text


async def test_take_arrive_resolve_reach_the_lifecycle(world: World) -> None:
    tok = world.token()
    for body in ("action=take", "action=arrive", "action=resolve&outcome=test&note=drill"):
        r = await world.client.post(f"/m/{tok}/action", content=body, headers=FORM)
        assert r.status_code == 303, r.text
    row = world.desk.lifecycle.state(world.alarm_id)
    assert (row["state"], row["outcome"], row["resolved_by"]) == ("resolved", "test", "w1")
    r = await world.client.get(f"/m/{tok}")
    assert 'data-kind="resolved"' in r.text and "drill" in r.text and "(web)" in r.text


async def test_refused_transition_is_409(world: World) -> None:
    r = await world.client.post(f"/m/{world.token()}/action", content="action=arrive", headers=FORM)
    assert r.status_code == 409
    assert state(world) is State.NOTIFIED


async def test_sms_replies_reach_the_lifecycle(world: World) -> None:
    assert "求助" in await world.sms("+8613800000001", "3")
    kinds = [e["kind"] for e in world.desk.lifecycle.history(world.alarm_id)]
    assert "need_help" in kinds
    assert "已按误报关闭" in await world.sms("+8613800000001", "2")
    assert world.desk.lifecycle.state(world.alarm_id)["outcome"] == Outcome.FALSE_ALARM
    assert world.desk.lifecycle.false_alarm_counts() == {"smk-42": 1}
    assert "没有待处理" in await world.sms("+8613800000001", "1")


async def test_a_worker_never_notified_has_no_alarm_to_answer(world: World) -> None:
    assert "no open alarm" in await world.sms("+447700900002", "1")
    assert state(world) is State.NOTIFIED


async def test_position_reaches_the_registry(world: World) -> None:
    r = await world.client.post(
        f"/m/{world.token()}/position", content="lat=24.5&lon=118.1", headers=FORM
    )
    assert r.status_code == 204
    got = rows(world.url, sa.select(registry.positions.c.worker, registry.positions.c.lat))
    assert got == [("w1", 24.5)]
