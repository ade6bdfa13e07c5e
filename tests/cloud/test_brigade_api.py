"""The brigade API on a real uvicorn server, with the real desk, feed and database: what a
brigade sees (its area only), who gets in (hostile keys, signatures, sizes), the schema."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cloud.brigade.guard import MAX_BODY_BYTES
from cloud.lifecycle import Outcome
from tests.cloud.test_brigade_support import V1, Cloud, running_cloud


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    async with running_cloud(tmp_path) as c:
        yield c


async def test_a_brigade_lists_and_reads_only_its_own_areas_fire_alarms(cloud: Cloud) -> None:
    east = await cloud.raise_fire("smk-1/smoke-fire")
    west = await cloud.raise_fire("smk-9/smoke-fire")
    flood = await cloud.raise_fire("smk-1/flood-level", category="flood")
    async with cloud.client(cloud.keys.east) as c:
        listed = (await c.get(f"{V1}/alarms")).json()["alarms"]
        assert [a["alarm_id"] for a in listed] == [east]
        one = (await c.get(f"{V1}/alarms/{east}")).json()
        assert one["place"]["address"] == "思明路 1 号" and one["verification"] == "unverified"
        assert one["owner"] == {"name": "早餐店 王", "phone": "+8613800000001"}
        other, unknown = await c.get(f"{V1}/alarms/{west}"), await c.get(f"{V1}/alarms/999999")
        not_fire = await c.get(f"{V1}/alarms/{flood}")
    assert other.status_code == unknown.status_code == not_fire.status_code == 404
    assert other.json() == unknown.json() == not_fire.json()  # nothing tells them apart
    async with cloud.client(cloud.keys.west) as c:
        assert [a["alarm_id"] for a in (await c.get(f"{V1}/alarms")).json()["alarms"]] == [west]
        assert (await c.get(f"{V1}/alarms/{east}")).status_code == 404
    r = await cloud.post(f"{V1}/alarms/{west}/status", {"status": "received"},
                         headers={"Idempotency-Key": "k1"})  # fmt: skip
    assert r.status_code == 404  # nor can it write on another area's alarm


async def test_state_and_since_filter_the_list(cloud: Cloud) -> None:
    first = await cloud.raise_fire("smk-1/smoke-fire")
    await cloud.desk.resolve(first, "w1", Outcome.FALSE_ALARM)
    second = await cloud.raise_fire("smk-1/smoke-fire")
    async with cloud.client(cloud.keys.east) as c:
        open_ = (await c.get(f"{V1}/alarms")).json()["alarms"]
        all_ = (await c.get(f"{V1}/alarms", params={"state": "all"})).json()["alarms"]
        late = await c.get(f"{V1}/alarms", params={"state": "all", "since": time.time() + 60})
        bad = await c.get(f"{V1}/alarms", params={"state": "closed"})
    assert [a["alarm_id"] for a in open_] == [second]
    assert [a["alarm_id"] for a in all_] == [second, first]
    assert all_[1]["verification"] == "false_alarm"
    assert late.json()["alarms"] == [] and bad.status_code == 422


HOSTILE = ["no key", "not a key", "unknown key", "wrong secret", "revoked", "expired",
           "read-only key writes", "bad signature", "replayed old timestamp", "no signature",
           "declared too big", "streamed too big"]  # fmt: skip
STATUS = {"no key": 401, "not a key": 401, "unknown key": 401, "wrong secret": 401,
          "revoked": 401, "expired": 401, "read-only key writes": 403, "bad signature": 401,
          "replayed old timestamp": 401, "no signature": 401, "declared too big": 413,
          "streamed too big": 413}  # fmt: skip


async def hostile(cloud: Cloud, case: str, path: str) -> httpx.Response:
    """One hostile POST of a valid status report."""
    body = {"status": "dispatched", "eta_s": 360}
    key = {"Idempotency-Key": f"hostile-{case}"}
    k = cloud.keys
    tokens = {"not a key": "letmein", "unknown key": "gab_0123456789ab_" + "A" * 43,
              "wrong secret": k.east[:21] + ("B" if k.east[21] != "B" else "C") + k.east[22:],
              "revoked": k.east_revoked, "expired": k.east_expired,
              "read-only key writes": k.east_read_only}  # fmt: skip
    if case == "no key":
        async with cloud.client() as c:
            return await c.post(path, json=body, headers=key)
    if case in tokens:
        return await cloud.post(path, body, token=tokens[case], headers=key)
    if case == "bad signature":
        return await cloud.post(path, body, brigade="west-fire", headers=key)
    if case == "replayed old timestamp":
        return await cloud.post(path, body, at=time.time() - 600, headers=key)
    if case == "no signature":
        async with cloud.client(k.east) as c:
            return await c.post(path, json=body, headers=key)
    big = b'{"status": "received", "note": "' + b"x" * MAX_BODY_BYTES + b'"}'
    if case == "declared too big":
        async with cloud.client(k.east) as c:
            return await c.post(
                path, content=big, headers={**key, "Content-Type": "application/json"}
            )

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the stream is counted
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    async with cloud.client(k.east) as c:
        return await c.post(
            path, content=chunks(), headers={**key, "Content-Type": "application/json"}
        )


@pytest.mark.parametrize("case", HOSTILE)
async def test_hostile_requests_are_refused_logged_once_and_change_nothing(
    cloud: Cloud, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    aid = await cloud.raise_fire("smk-1/smoke-fire")
    await cloud.desk.acknowledge(aid, "w1", "sms")
    await cloud.settled()
    before = cloud.tables()
    caplog.set_level(logging.INFO)
    caplog.clear()
    r = await hostile(cloud, case, f"{V1}/alarms/{aid}/status")
    assert r.status_code == STATUS[case], r.text
    if r.status_code == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")
    refusals = [x for x in caplog.records if x.name == "cloud.brigade.guard"]
    assert len(refusals) == 1, [x.getMessage() for x in refusals]
    line = refusals[0].getMessage()
    assert f"refused {STATUS[case]}" in line
    for token in (cloud.keys.east, cloud.keys.east_revoked, cloud.keys.east_expired):
        assert token not in line and token[17:] not in line  # never the secret part
    if case == "revoked":
        assert cloud.keys.east_revoked_id in line and "revoked" in line
    assert cloud.tables() == before


@pytest.mark.parametrize("case", ["no key", "revoked", "expired", "unknown key"])
async def test_reads_refuse_the_same_keys(cloud: Cloud, case: str) -> None:
    k = cloud.keys
    token = {"no key": None, "revoked": k.east_revoked, "expired": k.east_expired,
             "unknown key": "gab_0123456789ab_" + "A" * 43}[case]  # fmt: skip
    async with cloud.client(token) as c:
        assert (await c.get(f"{V1}/alarms")).status_code == 401
        assert (await c.get(f"{V1}/stream")).status_code == 401
    async with cloud.client(k.east_read_only) as c:  # reading needs only alarms:read
        assert (await c.get(f"{V1}/alarms")).status_code == 200


async def test_the_openapi_schema_describes_every_body_and_docs_load_nothing_from_elsewhere(
    cloud: Cloud,
) -> None:
    async with cloud.client() as c:
        schema = (await c.get("/openapi.json")).json()
        docs = await c.get("/docs")
        js = await c.get("/docs/assets/swagger-ui-bundle.js")
        css = await c.get("/docs/assets/swagger-ui.css")
    paths, models = schema["paths"], schema["components"]["schemas"]
    for p in ("/alarms", "/alarms/{alarm_id}", "/stream", "/alarms/{alarm_id}/status",
              "/alarms/{alarm_id}/answer", "/alarms/{alarm_id}/requests"):  # fmt: skip
        assert f"{V1}{p}" in paths, p
    for name in ("BrigadeAlarm", "AlarmList", "StatusReport", "AnswerReport", "RequestReport",
                 "Receipt", "StreamMessage", "Problem", "Place", "Responder"):  # fmt: skip
        assert name in models, name
    post = paths[f"{V1}/alarms/{{alarm_id}}/status"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/StatusReport"
    )
    ok = post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("/Receipt") and {"401", "403", "404", "413"} <= set(post["responses"])
    stream = paths[f"{V1}/stream"]["get"]["responses"]["200"]["content"]
    assert stream["text/event-stream"]["schema"]["$ref"].endswith("/StreamMessage")
    assert models["StatusReport"]["properties"]["eta_s"]["description"]
    signed = {p["name"] for p in post["parameters"] if p["in"] == "header"}
    assert {"X-Gridalarm-Timestamp", "X-Gridalarm-Signature", "Idempotency-Key"} <= signed
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert post["security"] == [{"HTTPBearer": []}]
    assert "/api/admin/brigades" in paths
    assert docs.status_code == 200 and js.status_code == 200 and css.status_code == 200
    assert "docs/assets/swagger-ui-bundle.js" in docs.text
    assert "http://" not in docs.text and "https://" not in docs.text  # no CDN, no validator
    assert "SwaggerUIBundle" in js.text
