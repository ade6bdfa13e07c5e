"""Shared pieces of the brigade API tests: a real cloud database with two areas and their
brigades, the real alarm desk with the brigade feed, and the web app under a real uvicorn on
a loopback port, in the test's own event loop (the desk's timers live on it)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from cloud.brigade.directory import Brigade, add_brigade, issue_key, revoke_key
from cloud.brigade.feed import BrigadeFeed, create_feed_tables
from cloud.brigade.keys import Scope
from cloud.brigade.portal import BrigadePortal
from cloud.brigade.signing import sign
from cloud.brigade.status import brigade_reports, create_status_tables
from cloud.database import open_database
from cloud.dispatch.texts import NotifyRenderer
from cloud.ingest.devices import upsert_devices
from cloud.lifecycle import AlarmDesk
from cloud.lifecycle.rule_alarms import alarm_events
from cloud.lifecycle.tables import lifecycle_alarms, outbox
from cloud.registry.model import Registry
from cloud.registry.tables import create_registry_tables, device_locations, workers
from cloud.web import LifecycleWorkerDesk, WebSettings, create_app
from rules import DeviceInfo
from tests.cloud.test_lifecycle_fixtures import (
    RankedDispatcher,
    RecordingSender,
    change,
    commit,
    config,
)
from tests.cloud.test_web_support import signer

PUBLIC = "https://alarm.example.cn"
ADMIN = "admin-token-" + "b" * 20
EAST = Brigade(id="east-fire", name="东区消防", communities=("c-east",))
WEST = Brigade(id="west-fire", name="西区消防", grids=("g-west-1",))
V1 = "/api/brigade/v1"


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    """Wait for *check* to hold, or fail naming *what*, after *timeout_s*."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """*app* under a real uvicorn on 127.0.0.1:<free port> in this loop; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]), name="test.uvicorn")

    async def started() -> bool:
        if task.done():
            task.result()  # raises what stopped it
        return bool(server.started)

    try:
        await until("uvicorn started", started, 10)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@dataclass
class Keys:
    east: str
    west: str
    east_read_only: str
    east_expired: str
    east_revoked: str
    east_revoked_id: str


@dataclass
class Cloud:
    """The running pieces and what the tests need to drive and check them."""

    url: str
    db: Engine
    desk: AlarmDesk
    portal: BrigadePortal
    base: str
    keys: Keys
    secrets: dict[str, str]
    sender: RecordingSender

    async def raise_fire(self, key: str, category: str = "fire") -> int:
        """A rule raises *key*, as ingest hands it to the desk; its alarm id once handled."""
        q = sa.select(lifecycle_alarms.c.alarm_id).where(lifecycle_alarms.c.key == key)
        before = {r[0] for r in self.rows(q)}
        c = change(key, category=category)
        await asyncio.to_thread(commit, self.url, [c])
        self.desk.on_changes([c])

        async def new() -> bool:
            return bool({r[0] for r in await asyncio.to_thread(self.rows, q)} - before)

        await until(f"alarm {key} in the lifecycle", new)
        return int(max({r[0] for r in self.rows(q)} - before))

    async def settled(self) -> None:
        """Until the outbox has nothing left to send (its audit is written)."""
        busy = sa.select(outbox.c.id).where(outbox.c.state.in_(["pending", "sending"]))

        async def idle() -> bool:
            return not await asyncio.to_thread(self.rows, busy)

        await until("the outbox sent everything", idle)

    def rows(self, query: Any) -> list[Any]:
        with self.db.connect() as conn:
            return list(conn.execute(query))

    def tables(self) -> dict[str, list[Any]]:
        """What a refused request must not change."""
        return {
            "reports": self.rows(sa.select(brigade_reports)),
            "events": self.rows(sa.select(alarm_events).order_by(alarm_events.c.id)),
            "outbox": self.rows(sa.select(outbox).order_by(outbox.c.id)),
        }

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=10)

    async def post(
        self, path: str, body: dict[str, Any], *, token: str | None = None,
        brigade: str = "east-fire", at: float | None = None, headers: dict[str, str] | None = None,
    ) -> httpx.Response:  # fmt: skip
        """POST *body* signed with *brigade*'s secret at *at* (now), with its key."""
        raw = json.dumps(body).encode()
        signed = sign(self.secrets[brigade], raw, time.time() if at is None else at)
        hdrs = {"Content-Type": "application/json", **signed, **(headers or {})}
        async with self.client(token or self.keys.east) as c:
            return await c.post(path, content=raw, headers=hdrs)


def seed_district(db: Engine) -> None:
    """Two areas' smoke detectors (c-east with a surveyed place, c-west), two workers."""
    upsert_devices(db, [
        DeviceInfo("smk-1", "gw-1", "smoke", "g-east-1", "b7", "c-east", 60.0),
        DeviceInfo("smk-9", "gw-2", "smoke", "g-west-1", "b1", "c-west", 60.0),
    ])  # fmt: skip
    with db.begin() as conn:
        conn.execute(sa.insert(device_locations).values(
            device="smk-1", lat=24.45, lon=118.08, address="思明路 1 号", building="7号楼",
            floor="3", owner="早餐店 王", owner_phone="+8613800000001",
        ))  # fmt: skip
        for wid, name, locale in (("w1", "李网格", "zh-CN"), ("w2", "Alice", "en")):
            conn.execute(sa.insert(workers).values(
                id=wid, name=name, phone=f"+861390000000{wid[-1]}", locale=locale,
                role="worker", community="c-east",
            ))  # fmt: skip


def _keys(db: Engine, now: float) -> Keys:
    east = issue_key(db, EAST.id, list(Scope), now, None)
    west = issue_key(db, WEST.id, list(Scope), now, None)
    read_only = issue_key(db, EAST.id, [Scope.ALARMS_READ], now, None)
    expired = issue_key(db, EAST.id, list(Scope), now - 7200, 3600)
    revoked = issue_key(db, EAST.id, list(Scope), now, None)
    revoke_key(db, revoked.key_id, now)
    return Keys(east.token, west.token, read_only.token, expired.token, revoked.token,
                revoked.key_id)  # fmt: skip


@asynccontextmanager
async def running_cloud(tmp_path: Path, url: str | None = None) -> AsyncIterator[Cloud]:
    """The cloud on *url* (a fresh, empty database; default: SQLite in *tmp_path*)."""
    url = url or f"sqlite:///{tmp_path / 'cloud.db'}"
    db = open_database(url)
    for create in (create_registry_tables, create_feed_tables, create_status_tables):
        create(db)
    seed_district(db)
    secrets = {b.id: add_brigade(db, b) for b in (EAST, WEST)}
    keys = _keys(db, time.time())
    sender = RecordingSender()
    async with AlarmDesk(
        url, config(), dispatcher=RankedDispatcher(["w1", "w2"]), sender=sender,
        renderer=NotifyRenderer(signer(), PUBLIC, Registry(), {}), feed=BrigadeFeed(),
        instance=f"brigade-{tmp_path.name}",
    ) as desk:  # fmt: skip
        portal = BrigadePortal(desk)
        app = create_app(
            LifecycleWorkerDesk(desk, db), signer(), public_base_url=PUBLIC, clock=time.time,
            settings=WebSettings(admin_token=SecretStr(ADMIN)), brigades=portal,
        )  # fmt: skip
        async with serve(app) as base:
            yield Cloud(url, db, desk, portal, base, keys, secrets, sender)
    db.dispose()


async def test_the_support_serves_and_stops(tmp_path: Path) -> None:
    async with running_cloud(tmp_path) as cloud, cloud.client() as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
