"""A console over a real alarm desk on a SQLite file: staff accounts, an app, alarms."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from cloud.console import attach_console
from cloud.console.users import Role, add_user
from cloud.database import open_database
from cloud.ingest.checkpoint import commit_checkpoint
from cloud.lifecycle import AlarmDesk
from cloud.lifecycle.tables import lifecycle_alarms
from cloud.registry import create_registry_tables
from tests.cloud.test_lifecycle_fixtures import (
    RankedDispatcher,
    RecordingSender,
    alarm_id,
    change,
    config,
    rows,
)
from tests.support import until

BASE = "http://console.test"
PASSWORD = "correct horse battery"


@dataclass
class Rig:
    url: str
    db: Engine
    desk: AlarmDesk
    app: FastAPI

    async def raise_alarm(self, key: str = "smk-1/smoke-fire", severity: str = "critical") -> int:
        """A rule raise through ingest's path; the alarm's id once the desk adopted it."""
        c = change(key, severity=severity)
        commit_checkpoint(self.db, [c], {})
        self.desk.on_changes([c])
        q = sa.select(lifecycle_alarms.c.alarm_id).where(lifecycle_alarms.c.key == key)
        await until(lambda: rows(self.url, q), 5, f"the desk adopting {key}")
        return alarm_id(self.url, key)


@contextlib.asynccontextmanager
async def make_rig(url: str) -> AsyncIterator[Rig]:
    """A console over a running desk on the database at *url*, with a viewer and a dispatcher."""
    db = open_database(url)
    create_registry_tables(db)
    for name, role in (("viewer", Role.VIEWER), ("disp", Role.DISPATCHER)):
        add_user(db, name, PASSWORD, role)
    desk = AlarmDesk(url, config(), dispatcher=RankedDispatcher(["w1"]), sender=RecordingSender())
    app = FastAPI()
    attach_console(app, desk, db, public_base_url=BASE)
    try:
        async with desk:
            yield Rig(url, db, desk, app)
    finally:
        db.dispose()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with make_rig(f"sqlite:///{tmp_path / 'cloud.db'}") as made:
        yield made


def client(rig: Rig) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.app), base_url=BASE)


async def sign_in(http: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    """The sign-in form's round trip, as a browser does it."""
    form = await http.get("/console/login", headers={"accept": "text/html"})
    token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return await http.post(
        "/console/login",
        data={"csrf": token, "username": name, "password": password, "next": "/console/"},
    )


def csrf_of(html: str) -> str:
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]
