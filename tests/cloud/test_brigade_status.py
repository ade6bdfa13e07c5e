"""The brigade's back-channel on a real server: status, answers and requests land in the
audit, on the grid worker's page and (``dispatched``) as one SMS; a rejection pages the duty
commander; repeats change nothing; the worker's "confirm fire" reaches the brigade."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cloud.brigade.feed import brigade_messages
from cloud.lifecycle.rule_alarms import alarm_events
from cloud.lifecycle.tables import outbox
from tests.cloud.test_brigade_support import PUBLIC, V1, Cloud, running_cloud
from tests.cloud.test_web_support import signer


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    async with running_cloud(tmp_path) as c:
        yield c


def page_path(worker: str, aid: int) -> str:
    return "/m/" + signer().make(worker, str(aid), datetime.now(UTC) + timedelta(hours=1))


def events(cloud: Cloud, aid: int, kind: str) -> list[Any]:
    e = alarm_events
    return cloud.rows(sa.select(e).where(e.c.alarm_id == aid, e.c.kind == kind).order_by(e.c.id))


def notices(cloud: Cloud, aid: int) -> list[Any]:
    o = outbox
    return cloud.rows(sa.select(o).where(o.c.alarm_id == aid, o.c.kind == "notice"))


async def test_dispatched_shows_on_the_page_in_the_audit_and_as_one_sms(cloud: Cloud) -> None:
    aid = await cloud.raise_fire("smk-1/smoke-fire")
    await cloud.desk.acknowledge(aid, "w1", "sms")
    body = {"status": "dispatched", "eta_s": 360, "incident": "F-2026-0042",
            "idempotency_key": "st-1"}  # fmt: skip
    first = await cloud.post(f"{V1}/alarms/{aid}/status", body)
    assert first.status_code == 200, first.text
    assert first.json()["repeat"] is False and first.json()["kind"] == "status"
    again = await cloud.post(f"{V1}/alarms/{aid}/status", body)
    assert again.json() == {**first.json(), "repeat": True}

    (event,) = events(cloud, aid, "brigade_status")
    assert event.actor == "brigade:east-fire"
    detail = json.loads(event.detail)
    assert detail["status"] == "dispatched" and detail["eta_s"] == 360
    assert detail["incident"] == "F-2026-0042"
    (sms,) = notices(cloud, aid)
    assert sms.worker_id == "w1" and sms.text.startswith("【街道大脑】消防已出动（东区消防）")
    assert "预计6分钟到达" in sms.text and sms.link.startswith(f"{PUBLIC}/m/")  # the page
    await cloud.settled()
    assert any(m.message_id == sms.id for m in cloud.sender.delivered.values())

    async with cloud.client() as c:
        zh = await c.get(page_path("w1", aid))
        en = await c.get(page_path("w2", aid))
    assert 'id="brigade-status" data-status="dispatched"' in zh.text
    assert "消防已出动" in zh.text and "预计6 分钟到达" in zh.text and "东区消防" in zh.text
    assert "brigade dispatched" in en.text and "ETA 6 min" in en.text


async def test_dispatched_before_anyone_took_it_tells_every_notified_worker(cloud: Cloud) -> None:
    aid = await cloud.raise_fire("smk-1/smoke-fire")
    r = await cloud.post(f"{V1}/alarms/{aid}/status", {"status": "dispatched"},
                         headers={"Idempotency-Key": "st-2"})  # fmt: skip
    assert r.status_code == 200
    told = sorted((n.worker_id, n.locale) for n in notices(cloud, aid))
    assert told == [("w1", "zh-CN"), ("w2", "zh-CN")]  # as their alerts reached them
    (event,) = events(cloud, aid, "notice")
    assert json.loads(event.detail)["workers"] == ["w1", "w2"]


async def test_a_reused_key_with_another_report_is_409_and_other_statuses_send_no_sms(
    cloud: Cloud,
) -> None:
    aid = await cloud.raise_fire("smk-1/smoke-fire")
    hdr = {"Idempotency-Key": "st-3"}
    assert (await cloud.post(f"{V1}/alarms/{aid}/status", {"status": "received"},
                             headers=hdr)).status_code == 200  # fmt: skip
    r = await cloud.post(f"{V1}/alarms/{aid}/status", {"status": "on_scene"}, headers=hdr)
    assert r.status_code == 409
    both = await cloud.post(
        f"{V1}/alarms/{aid}/status", {"status": "en_route", "idempotency_key": "other"}, headers=hdr
    )
    none = await cloud.post(f"{V1}/alarms/{aid}/status", {"status": "en_route"})
    assert both.status_code == none.status_code == 422
    closed = {"status": "closed", "disposition": "food on stove", "idempotency_key": "st-4"}
    assert (await cloud.post(f"{V1}/alarms/{aid}/status", closed)).status_code == 200
    assert [json.loads(e.detail)["status"] for e in events(cloud, aid, "brigade_status")] == [
        "received",
        "closed",
    ]
    assert notices(cloud, aid) == []  # only dispatched and requests are texted


async def test_a_rejection_pages_the_duty_commander_once(cloud: Cloud) -> None:
    aid = await cloud.raise_fire("smk-1/smoke-fire")
    body = {"answer": "rejected", "reason": "not_in_area", "text": "outside our district"}
    for key in ("ans-1", "ans-1", "ans-2"):  # a repeat, then the same answer under a new key
        r = await cloud.post(f"{V1}/alarms/{aid}/answer", body, headers={"Idempotency-Key": key})
        assert r.status_code == 200, r.text
    (page,) = events(cloud, aid, "brigade_rejected")
    assert page.actor == "brigade:east-fire" and json.loads(page.detail)["workers"] == ["commander"]
    assert [o.worker_id for o in cloud.rows(sa.select(outbox).where(
        outbox.c.alarm_id == aid, outbox.c.worker_id == "commander"))] == ["commander"]  # fmt: skip
    assert len(events(cloud, aid, "brigade_answer")) == 2  # two keys, two reports
    (raised,) = cloud.rows(sa.select(brigade_messages).where(brigade_messages.c.alarm_id == aid))
    assert raised.answer == "rejected"
    bad = await cloud.post(f"{V1}/alarms/{aid}/answer", {"answer": "rejected"},
                           headers={"Idempotency-Key": "ans-3"})  # fmt: skip
    assert bad.status_code == 422  # a rejection names its reason


async def test_an_accepted_answer_pages_nobody(cloud: Cloud) -> None:
    aid = await cloud.raise_fire("smk-1/smoke-fire")
    r = await cloud.post(f"{V1}/alarms/{aid}/answer", {"answer": "accepted", "incident": "F-9"},
                         headers={"Idempotency-Key": "ok-1"})  # fmt: skip
    assert r.status_code == 200
    assert events(cloud, aid, "brigade_rejected") == []
    (e,) = events(cloud, aid, "brigade_answer")
    assert json.loads(e.detail)["incident"] == "F-9"


async def test_a_request_is_audited_and_shown_on_the_page(cloud: Cloud) -> None:
    aid = await cloud.raise_fire("smk-1/smoke-fire")
    r = await cloud.post(f"{V1}/alarms/{aid}/requests", {"text": "钥匙持有人多久到？"},
                         headers={"Idempotency-Key": "rq-1"})  # fmt: skip
    assert r.status_code == 200 and r.json()["kind"] == "request"
    (e,) = events(cloud, aid, "brigade_request")
    assert json.loads(e.detail)["text"] == "钥匙持有人多久到？"
    again = await cloud.post(f"{V1}/alarms/{aid}/requests", {"text": "钥匙持有人多久到？"},
                             headers={"Idempotency-Key": "rq-1"})  # fmt: skip
    assert again.json()["repeat"] is True
    told = sorted((n.worker_id, n.text.split(" http")[0]) for n in notices(cloud, aid))
    assert told == [(w, f"【街道大脑】东区消防询问：钥匙持有人多久到？（报警{aid}）")
                    for w in ("w1", "w2")]  # fmt: skip
    async with cloud.client() as c:
        html = (await c.get(page_path("w1", aid))).text
    assert 'id="brigade-requests"' in html and "钥匙持有人多久到？" in html


async def test_the_workers_confirm_fire_button_tells_the_brigade(cloud: Cloud) -> None:
    aid = await cloud.raise_fire("smk-1/smoke-fire")
    path = page_path("w1", aid)
    async with cloud.client() as c:
        for action in ("take", "arrive"):
            r = await c.post(f"{path}/action", data={"action": action}, headers={"Origin": PUBLIC})
            assert r.status_code == 303
        assert 'id="btn-verify"' in (await c.get(path)).text
        r = await c.post(f"{path}/action", data={"action": "verify"}, headers={"Origin": PUBLIC})
        assert r.status_code == 303
        html = (await c.get(path)).text
    assert 'id="btn-verify"' not in html and "确认火情" in html  # in the history now
    async with cloud.client(cloud.keys.east) as c:
        facts = (await c.get(f"{V1}/alarms/{aid}")).json()
    assert facts["verification"] == "worker_on_site"
    steps = [m.step for m in cloud.rows(sa.select(brigade_messages).where(
        brigade_messages.c.alarm_id == aid).order_by(brigade_messages.c.seq))]  # fmt: skip
    assert steps == ["raised", "acknowledged", "on_site", "verified"]
