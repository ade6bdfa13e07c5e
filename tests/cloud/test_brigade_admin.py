"""The brigade admin API on a real server: brigades and keys as ``gridalarm cloud brigade``
makes them (a token shown once, then usable; revoked and rotated keys stop), dead letters
listed and redelivered; nothing without the admin token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from cloud.brigade.feed import Delivery, brigade_messages
from cloud.lifecycle import Outcome
from cloud.lifecycle.rule_alarms import alarm_events
from tests.cloud.test_brigade_support import ADMIN, V1, Cloud, running_cloud

NEW = {"brigade": {"id": "north-fire", "name": "北区消防", "communities": ["c-east"]}}


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    async with running_cloud(tmp_path) as c:
        yield c


@pytest.fixture
async def admin(cloud: Cloud) -> AsyncIterator[httpx.AsyncClient]:
    async with cloud.client(ADMIN) as c:
        yield c


async def reads(cloud: Cloud, token: str) -> int:
    async with cloud.client(token) as c:
        return (await c.get(f"{V1}/alarms")).status_code


async def test_a_brigade_added_over_the_api_gets_a_working_key_shown_once(
    cloud: Cloud, admin: httpx.AsyncClient
) -> None:
    r = await admin.post("/api/admin/brigades", json=NEW)
    assert r.status_code == 201, r.text
    token, secret = r.json()["key"]["token"], r.json()["signing_secret"]
    assert token.startswith("gab_") and secret.startswith("whsec_")
    assert await reads(cloud, token) == 200
    listed = await admin.get("/api/admin/brigades")
    assert [b["brigade"]["id"] for b in listed.json()] == ["east-fire", "north-fire", "west-fire"]
    assert token[17:] not in listed.text and secret not in listed.text
    (north,) = [b for b in listed.json() if b["brigade"]["id"] == "north-fire"]
    assert north["keys"][0]["key_id"] == r.json()["key"]["key_id"]
    assert (await admin.post("/api/admin/brigades", json=NEW)).status_code == 409
    got = await admin.get("/api/admin/brigades/north-fire/signing-secret")
    assert got.json() == {"brigade_id": "north-fire", "signing_secret": secret}
    assert (await admin.get("/api/admin/brigades/nobody/signing-secret")).status_code == 404
    bad = {"brigade": {"id": "Bad Id!", "name": "x"}}
    assert (await admin.post("/api/admin/brigades", json=bad)).status_code == 422


async def test_keys_issued_revoked_and_rotated(cloud: Cloud, admin: httpx.AsyncClient) -> None:
    r = await admin.post("/api/admin/brigades/east-fire/keys", json={"scopes": ["alarms:read"]})
    assert r.status_code == 201
    reader = r.json()
    assert await reads(cloud, reader["token"]) == 200
    w = await cloud.post(f"{V1}/alarms/1/status", {"status": "received"}, token=reader["token"],
                         headers={"Idempotency-Key": "k"})  # fmt: skip
    assert w.status_code == 403
    assert (await admin.post(f"/api/admin/brigade-keys/{reader['key_id']}/revoke")).json() == {
        "key_id": reader["key_id"], "revoked": True,
    }  # fmt: skip
    assert await reads(cloud, reader["token"]) == 401
    assert (
        await admin.post(f"/api/admin/brigade-keys/{reader['key_id']}/revoke")
    ).status_code == 404

    r = await admin.post("/api/admin/brigades/west-fire/rotate", json={"grace_hours": 0})
    assert r.status_code == 201
    assert await reads(cloud, cloud.keys.west) == 401  # no grace: the old key stops at once
    assert await reads(cloud, r.json()["token"]) == 200
    missing = await admin.post("/api/admin/brigades/nobody/keys", json={})
    assert missing.status_code == 404


async def test_dead_letters_are_listed_and_redelivered_under_the_same_key(
    cloud: Cloud, admin: httpx.AsyncClient
) -> None:
    aid = await cloud.raise_fire("smk-1/smoke-fire")
    m = brigade_messages
    with cloud.db.begin() as conn:
        conn.execute(sa.update(m).where(m.c.alarm_id == aid)
                     .values(state=Delivery.DEAD, attempts=8, last_error="HTTP 400"))  # fmt: skip
    (dead,) = (await admin.get("/api/admin/brigade-dead-letters")).json()
    assert dead["message_id"] == f"ga-{aid}-raised" and dead["last_error"] == "HTTP 400"
    assert (await admin.get("/api/admin/brigade-dead-letters?brigade=west-fire")).json() == []
    assert (
        await admin.post("/api/admin/brigade-dead-letters/redeliver", json={})
    ).status_code == 422
    r = await admin.post("/api/admin/brigade-dead-letters/redeliver",
                         json={"message_id": dead["message_id"]})  # fmt: skip
    assert r.json() == {"queued": 1}
    (row,) = cloud.rows(sa.select(m).where(m.c.alarm_id == aid))
    assert (row.state, row.message_id, row.attempts) == (Delivery.PENDING, dead["message_id"], 0)
    again = await admin.post("/api/admin/brigade-dead-letters/redeliver", json={"all": True})
    assert again.status_code == 404


@pytest.mark.parametrize("token", [None, "wrong-admin-token-xxxxxxxxxxxx", "gab_0123456789ab_x"])
async def test_nothing_without_the_admin_token(cloud: Cloud, token: str | None) -> None:
    async with cloud.client(token) as c:
        assert (await c.get("/api/admin/brigades")).status_code == 401
        assert (await c.post("/api/admin/brigades", json=NEW)).status_code == 401
        assert (await c.post("/api/admin/brigades/east-fire/keys", json={})).status_code == 401
        assert (await c.post("/api/admin/brigades/east-fire/rotate", json={})).status_code == 401
        revoke = await c.post(f"/api/admin/brigade-keys/{cloud.keys.east[4:16]}/revoke")
        assert revoke.status_code == 401
        assert (await c.get("/api/admin/brigade-dead-letters")).status_code == 401
        secret = await c.get("/api/admin/brigades/east-fire/signing-secret")
        assert secret.status_code == 401 and cloud.secrets["east-fire"] not in secret.text
    assert await reads(cloud, cloud.keys.east) == 200 and await reads(cloud, cloud.keys.west) == 200
    async with cloud.client(ADMIN) as c:
        assert len((await c.get("/api/admin/brigades")).json()) == 2


async def test_the_dispatcher_tells_the_brigade_the_key_holder_was_reached_once(
    cloud: Cloud, admin: httpx.AsyncClient
) -> None:
    aid = await cloud.raise_fire("smk-1/smoke-fire")
    path = f"/api/admin/alarms/{aid}/key-holder-reached"
    body = {"by": "张调度", "note": "业主10分钟到"}
    assert (await admin.post(path, json=body)).json() == {"alarm_id": aid, "changed": True}
    assert (await admin.post(path, json=body)).json() == {"alarm_id": aid, "changed": False}
    m, e = brigade_messages, alarm_events
    steps = [r.step for r in cloud.rows(sa.select(m).where(m.c.alarm_id == aid).order_by(m.c.seq))]
    assert steps == ["raised", "key_holder"]
    (event,) = cloud.rows(sa.select(e).where(e.c.alarm_id == aid, e.c.kind == "key_holder"))
    assert event.actor == "dispatcher:张调度" and "业主10分钟到" in event.detail
    assert (await admin.post("/api/admin/alarms/999999/key-holder-reached", json=body)
            ).status_code == 404  # fmt: skip
    other = await cloud.raise_fire("smk-9/smoke-fire")
    await cloud.desk.resolve(other, "w1", Outcome.REAL)
    late = await admin.post(f"/api/admin/alarms/{other}/key-holder-reached", json=body)
    assert late.status_code == 409
    async with cloud.client() as c:
        assert (await c.post(path, json=body)).status_code == 401
