"""Alarm to the nearest grid worker, on real parts: simulator → gateway → Mosquitto → cloud →
the real twilio client → a local stand-in of Twilio's API; replies through the signed webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from cloud.database import open_database
from cloud.lifecycle.rule_alarms import list_events
from cloud.registry import create_registry_tables, import_district, record_position
from cloud.worker import Cloud, cloud_worker
from edge.gateway import run_gateway
from firmware_sim import SimulatorSet
from gridalarm.brokers import Mosquitto, free_port
from rigs.cloud import FROM, LIFECYCLE, cloud_config, district, twilio_environ
from rigs.gateway import rig_sim_config, sequenced, write_gateway_config
from rigs.standins.twilio_api import TwilioStandin
from tests.integration.test_cloud_restart import CloudProcess
from tests.support import Recorder, until

pytestmark = pytest.mark.integration


def twilio_env(monkeypatch: pytest.MonkeyPatch, twilio: TwilioStandin) -> None:
    """Point the real twilio client (through the cloud's env settings) at the stand-in."""
    for var in ("TWILIO_REGION", "TWILIO_EDGE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in twilio_environ(twilio).items():
        monkeypatch.setenv(var, value)


@contextlib.asynccontextmanager
async def loop_rig(
    broker: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    twilio: TwilioStandin,
    lifecycle: str = LIFECYCLE,
) -> AsyncIterator[tuple[SimulatorSet, Cloud, str]]:
    twilio_env(monkeypatch, twilio)
    work = tmp_path / "cloud"
    work.mkdir()
    reg = district(work)
    (work / "lifecycle.yaml").write_text(lifecycle, encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = cloud_config(
        broker,
        work,
        dispatch={
            "lifecycle": str(work / "lifecycle.yaml"),
            "registry_dir": str(reg),
            "http_listen": f"127.0.0.1:{port}",
            "public_base_url": base,
        },
    )
    watch = Recorder(broker.port, "ga/v1/gw-t/#", client_id="dispatch-watch")
    async with SimulatorSet.from_config(rig_sim_config()) as sims, cloud_worker(config) as cloud:
        assert cloud.dispatch is not None
        now = time.time()
        record_position(cloud.db, "w-near", 24.4809, 118.0900, now)  # ~100 m north of the shop
        record_position(cloud.db, "w-far", 24.4935, 118.0900, now)  # ~1.5 km north
        cloud.dispatch.index.update_position("w-near", 24.4809, 118.0900, now)
        cloud.dispatch.index.update_position("w-far", 24.4935, 118.0900, now)
        gw = asyncio.create_task(run_gateway(write_gateway_config(sims, broker, tmp_path / "gw")))
        try:
            await until(
                lambda: len({m["dev"] for m in sequenced(watch.snapshot())}) >= 5, 30, "all devices"
            )
            yield sims, cloud, base
        finally:
            gw.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gw
            watch.close()


def sms_to(twilio: TwilioStandin, phone: str) -> list[dict[str, Any]]:
    return [m for m in twilio.messages if m["to"] == phone]


async def reply_sms(base: str, twilio: TwilioStandin, from_phone: str, body: str) -> httpx.Response:
    url = f"{base}/twilio/sms"
    form = {
        "From": from_phone,
        "To": FROM,
        "Body": body,
        "MessageSid": "SM" + "1" * 32,
        "AccountSid": twilio.account_sid,
    }
    signature = RequestValidator(twilio.auth_token).compute_signature(url, form)
    async with httpx.AsyncClient() as client:
        return await client.post(url, data=form, headers={"X-Twilio-Signature": signature})


def events(cloud: Cloud, kind: str) -> list[dict[str, Any]]:
    return [e for e in list_events(cloud.db) if e["kind"] == kind]


async def test_smoke_alarm_reaches_the_nearest_worker_then_escalates_then_reply_stops_it(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TwilioStandin() as twilio:
        async with loop_rig(broker, tmp_path, monkeypatch, twilio) as (sims, cloud, base):
            sims.device("smk-0001").trigger("smoke")
            t0 = time.monotonic()
            first = await until(
                lambda: twilio.messages, 10, "the first SMS request at the Twilio stand-in"
            )
            took = time.monotonic() - t0
            assert first[0]["to"] == "+8613800000001", (
                "the nearest on-duty worker of the device's grid"
            )
            assert "smk-0001" in first[0]["body"] and "/m/" in first[0]["body"]
            assert took < 2.0, f"field event to SMS request took {took:.2f} s"

            # nobody answers: the next step reaches the next nearest worker after its wait
            await until(
                lambda: sms_to(twilio, "+8613800000002"), 15, "the escalation to the next worker"
            )
            assert not sms_to(twilio, "+8613800000003"), "a worker of another grid is not nearest"
            # she replies "1": the alarm is hers and the chain stops
            answer = await reply_sms(base, twilio, "+8613800000002", "1")
            assert answer.status_code == 200 and "<Message>" in answer.text
            await until(
                lambda: events(cloud, "acknowledged"), 10, "the acknowledgement in the audit log"
            )
            sent = len(twilio.messages)
            await asyncio.sleep(5)  # the supervisor step was due 3 s after: it must not come
            assert not sms_to(twilio, "+8613800000010"), "acknowledgement stops the chain"
            assert len(twilio.messages) == sent

            # a second detector: "2" closes it as a false alarm and counts it against the device
            sims.device("smk-0002").trigger("smoke")
            await until(
                lambda: len(sms_to(twilio, "+8613800000001")) >= 2, 15, "the second alarm's SMS"
            )
            answer = await reply_sms(base, twilio, "+8613800000001", "2")
            assert answer.status_code == 200
            await until(
                lambda: any("false_alarm" in (e["detail"] or "") for e in list_events(cloud.db)),
                10,
                "the false alarm in the audit log",
            )
            assert cloud.dispatch is not None
            counts = cloud.dispatch.desk.lifecycle.false_alarm_counts()
            assert counts.get("smk-0002") == 1


async def test_bad_twilio_signature_is_refused_and_changes_nothing(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TwilioStandin() as twilio:
        async with loop_rig(broker, tmp_path, monkeypatch, twilio) as (sims, cloud, base):
            sims.device("smk-0001").trigger("smoke")
            await until(lambda: twilio.messages, 10, "the first SMS")
            async with httpx.AsyncClient() as client:
                forged = await client.post(
                    f"{base}/twilio/sms",
                    data={"From": "+8613800000001", "Body": "2"},
                    headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
                )
                missing = await client.post(
                    f"{base}/twilio/sms", data={"From": "+8613800000001", "Body": "2"}
                )
            assert forged.status_code == 403 and missing.status_code == 403
            assert not events(cloud, "acknowledged") and not events(cloud, "resolved")


async def test_twilio_500_is_retried_and_delivered_once_then_falls_back(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TwilioStandin() as twilio:
        async with loop_rig(broker, tmp_path, monkeypatch, twilio) as (sims, cloud, _base):
            twilio.fail_next(1, 500)  # a short outage: retried, delivered once
            sims.device("smk-0001").trigger("smoke")
            await until(lambda: sms_to(twilio, "+8613800000001"), 15, "the SMS after a retry")
            await until(lambda: events(cloud, "delivered"), 10, "the delivery in the audit log")
            delivered = json.loads(events(cloud, "delivered")[0]["detail"])
            assert delivered["channel"] == "sms", delivered
            assert len(sms_to(twilio, "+8613800000001")) == 1, "delivered once"
            assert sum(1 for r in twilio.requests if "Messages.json" in r.path) >= 2, (
                "it was retried"
            )

            twilio.fail_all(500)  # a long outage: SMS gives up, the console channel takes it
            sims.device("smk-0002").trigger("smoke")
            await until(lambda: events(cloud, "fallback"), 20, "the fallback in the audit log")
            fallback = json.loads(events(cloud, "fallback")[0]["detail"])
            assert fallback["next_channel"] == "console", fallback
            # the provider's outage is visible, not only in the audit: the SMS channel is in fault
            parts = cloud.health.ready()[1]
            assert "sends failed, retrying" in parts["channel.sms"], parts
            assert not cloud.health.ready()[0]
            await until(
                lambda: any(
                    json.loads(e["detail"]).get("channel") == "console"
                    for e in events(cloud, "delivered")
                ),
                20,
                "delivery by the console",
            )


async def test_kill9_during_an_escalation_wait_does_each_step_exactly_once(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TwilioStandin() as twilio:
        twilio_env(monkeypatch, twilio)
        cloud = CloudProcess(tmp_path / "cloud")
        cloud.dir.mkdir()
        reg = district(cloud.dir)
        db = open_database(f"sqlite:///{cloud.dir / 'cloud.sqlite'}")
        create_registry_tables(db)
        import_district(db, reg)
        record_position(db, "w-near", 24.4809, 118.0900, time.time() + 3600)  # fresh for an hour
        record_position(db, "w-far", 24.4935, 118.0900, time.time() + 3600)
        db.dispose()
        port = free_port()
        config = {
            "mqtt": {"url": broker.url, "client_id": "cloud-dispatch-kill"},
            "database_url": "sqlite:///cloud.sqlite",
            "metrics_listen": None,
            "sink": {"kind": "none"},
            "dispatch": {
                "lifecycle": "lifecycle.yaml",
                "http_listen": f"127.0.0.1:{port}",
                "public_base_url": f"http://127.0.0.1:{port}",
            },
        }
        (cloud.dir / "cloud.yaml").write_text(json.dumps(config), encoding="utf-8")
        cloud.start()
        await until(
            lambda: "(session present" in cloud.log(), 30, "the cloud to subscribe"
        )
        watch = Recorder(broker.port, "ga/v1/gw-t/#", client_id="kill-watch")
        async with SimulatorSet.from_config(rig_sim_config()) as sims:
            gw = asyncio.create_task(
                run_gateway(write_gateway_config(sims, broker, tmp_path / "gw"))
            )
            try:
                await until(
                    lambda: len({m["dev"] for m in sequenced(watch.snapshot())}) >= 5, 30, "devices"
                )
                sims.device("smk-0001").trigger("smoke")
                await until(lambda: sms_to(twilio, "+8613800000001"), 15, "the first step's SMS")
                cloud.kill9()  # during the 3 s wait before the next step
                cloud.start()
                await until(
                    lambda: sms_to(twilio, "+8613800000002"), 30, "the second step after restart"
                )
                await until(
                    lambda: sms_to(twilio, "+8613800000010"), 30, "the third step (supervisor)"
                )
            finally:
                gw.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await gw
                watch.close()
                code = cloud.stop()
        assert code == 0, cloud.log()[-3000:]
        per_phone: dict[str, int] = {}
        for m in twilio.messages:
            per_phone[m["to"]] = per_phone.get(m["to"], 0) + 1
        assert per_phone == {"+8613800000001": 1, "+8613800000002": 1, "+8613800000010": 1}, (
            per_phone
        )


async def test_reply_3_asks_for_help_and_the_next_step_runs_at_once(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = LIFECYCLE.replace("wait_s: 3,", "wait_s: 600,")  # no timed step within this test
    with TwilioStandin() as twilio:
        async with loop_rig(broker, tmp_path, monkeypatch, twilio, slow) as (sims, cloud, base):
            sims.device("smk-0001").trigger("smoke")
            await until(lambda: sms_to(twilio, "+8613800000001"), 10, "the first SMS")
            answer = await reply_sms(base, twilio, "+8613800000001", "3")
            assert answer.status_code == 200 and "<Message>" in answer.text
            await until(
                lambda: sms_to(twilio, "+8613800000002"), 10, "help: the next worker notified"
            )
            assert events(cloud, "need_help"), "the request for help is in the audit log"
