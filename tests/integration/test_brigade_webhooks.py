"""Fire brigades' webhooks on real parts: simulator → gateway → Mosquitto → cloud → stand-in
brigade servers (real HTTP, checking our signature, deduplicating by Idempotency-Key).

One brigade takes JSON, one CAP 1.2 (read back with cap-tools), one covers another
community, one rejects everything. Then an outage of the brigade with a kill -9 of the cloud
in it (the cloud a subprocess under a supervisor, as in tests/faults/): every message is
processed once per key, in order per alarm. ``GRIDALARM_FAULT_LENGTH=full`` holds the outage
2 minutes (by hand); ``short`` (CI, the default) 15 s.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from cloud.brigade.cap import facts_of, parse_cap
from cloud.brigade.directory import Brigade, WebhookFormat, add_brigade
from cloud.brigade.feed import Delivery, brigade_messages
from cloud.lifecycle import Outcome
from cloud.lifecycle.rule_alarms import list_events
from cloud.worker import Cloud, cloud_worker
from gridalarm.brokers import Mosquitto, free_port
from rigs.cloud import cloud_config
from rigs.standins.brigade import BrigadeStandin, Processed
from rigs.standins.twilio_api import TwilioStandin
from tests.deploy.pki import make_test_pki
from tests.faults.loop import fault_loop
from tests.integration.test_dispatch import loop_rig
from tests.support import until

pytestmark = pytest.mark.integration

OUTAGE_S = 120.0 if os.environ.get("GRIDALARM_FAULT_LENGTH", "short") == "full" else 15.0
COMMANDER = "+8613800000020"


def brigade(
    db: sa.Engine, standin: BrigadeStandin, bid: str, community: str = "c-1",
    fmt: WebhookFormat = WebhookFormat.JSON,
) -> None:  # fmt: skip
    b = Brigade(id=bid, name=bid, communities=(community,), webhook_urls=(standin.url + "/h",),
                format=fmt)  # fmt: skip
    standin.secrets.append(add_brigade(db, b))


@pytest.fixture
def standins() -> Iterator[dict[str, BrigadeStandin]]:
    with BrigadeStandin() as j, BrigadeStandin() as c, BrigadeStandin() as far, \
            BrigadeStandin() as rej:  # fmt: skip
        rej.reject("ga-", "not_in_area")
        yield {"json": j, "cap": c, "far": far, "rejects": rej}


def keyed(got: list[Processed], key: str) -> Processed:
    return next(p for p in got if p.key == key)


def events(cloud: Cloud, kind: str) -> list[dict[str, Any]]:
    return [e for e in list_events(cloud.db) if e["kind"] == kind]


async def test_a_smoke_alarm_reaches_json_and_cap_brigades_then_update_and_cancel(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    standins: dict[str, BrigadeStandin],
) -> None:  # fmt: skip
    s = standins
    with TwilioStandin() as twilio:
        async with loop_rig(broker, tmp_path, monkeypatch, twilio) as (sims, cloud, _):
            brigade(cloud.db, s["json"], "siming-fire")
            brigade(cloud.db, s["cap"], "county-cap", fmt=WebhookFormat.CAP)
            brigade(cloud.db, s["far"], "far-fire", community="c-9")
            brigade(cloud.db, s["rejects"], "picky-fire")
            t0 = time.monotonic()
            sims.device("smk-0001").trigger("smoke")
            (alert,) = await asyncio.to_thread(s["json"].wait_processed, 1, 5.0)
            took = alert.received_at - t0
            assert took < 1.0, f"field event to the brigade's webhook took {took:.2f} s"
            body = alert.json()
            aid = body["alarm"]["alarm_id"]
            assert (alert.key, body["msg_type"]) == (f"ga-{aid}-raised", "Alert")
            assert body["alarm"]["verification"] == "unverified"
            assert body["alarm"]["place"]["address"] == "叶厝路1号"

            (cap,) = await asyncio.to_thread(s["cap"].wait_processed, 1, 5.0)
            assert cap.content_type == "application/cap+xml"
            cap_alert = parse_cap(cap.body)
            got = facts_of(cap_alert)
            a = body["alarm"]
            assert (got["alarm_id"], got["address"], got["building"], got["floor"]) == (
                str(aid),
                a["place"]["address"],
                a["place"]["building"],
                a["place"]["floor"],
            )
            assert (got["verification"], got["device"], got["owner_phone"]) == (
                "unverified",
                "smk-0001",
                a["owner"]["phone"],
            )
            assert cap_alert.infos[0].certainty.value == "Possible"

            # the second detector confirms it: an Update, Observed
            sims.device("smk-0002").trigger("smoke")
            confirmed = f"ga-{aid}-confirmed"
            await until(lambda: any(p.key == confirmed for p in s["json"].processed), 10,
                        "the Update of the confirmation")  # fmt: skip
            update = keyed(s["json"].processed, confirmed).json()
            assert update["msg_type"] == "Update" and update["references"] == f"ga-{aid}-raised"
            assert update["alarm"]["verification"] == "second_detector"
            await until(lambda: any(p.key == confirmed for p in s["cap"].processed), 10,
                        "the CAP Update")  # fmt: skip
            cap_update = parse_cap(keyed(s["cap"].processed, confirmed).body)
            assert cap_update.msg_type.value == "Update"
            assert cap_update.infos[0].certainty.value == "Observed"
            assert cap_update.references_to_list()[0].identifier == f"ga-{aid}-raised"

            # the grid worker: false alarm, a Cancel referencing the Alert
            assert cloud.dispatch is not None
            await cloud.dispatch.desk.resolve(aid, "w-near", Outcome.FALSE_ALARM, "web")
            cancel_key = f"ga-{aid}-false_alarm"
            await until(lambda: any(p.key == cancel_key for p in s["cap"].processed)
                        and any(p.key == cancel_key for p in s["json"].processed), 10,
                        "the Cancel at both brigades")  # fmt: skip
            cancel = keyed(s["json"].processed, cancel_key).json()
            assert cancel["msg_type"] == "Cancel" and cancel["references"] == f"ga-{aid}-raised"
            cap_cancel = parse_cap(keyed(s["cap"].processed, cancel_key).body)
            assert cap_cancel.msg_type.value == "Cancel"
            assert str(cap_cancel.references_to_list()[0]) == str(
                cap_alert.references_to_list()[0]
                if cap_alert.references
                else f"{cap_alert.sender},{cap_alert.identifier},{cap_alert.sent}"
            )

            # a brigade rejected it: the duty commander is paged (SMS) and it is audited
            await until(lambda: [e for e in events(cloud, "brigade_rejected")
                                 if e["alarm_id"] == aid], 10, "the page")  # fmt: skip
            await until(lambda: [m for m in twilio.messages if m["to"] == COMMANDER], 10,
                        "the duty commander's SMS")  # fmt: skip
            assert [e for e in events(cloud, "brigade_answer") if e["alarm_id"] == aid]
            assert s["far"].requests == [], "a brigade of another area hears nothing"
            assert s["json"].bad_signatures == 0 and s["cap"].bad_signatures == 0


def open_rows(db: sa.Engine, bid: str) -> list[Any]:
    m = brigade_messages
    with db.connect() as conn:
        return conn.execute(sa.select(m).where(m.c.brigade_id == bid).order_by(m.c.seq)).all()


@pytest.mark.timeout(OUTAGE_S + 240)
async def test_an_outage_with_a_kill9_in_it_loses_and_doubles_nothing(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with BrigadeStandin() as hq:
        async with fault_loop(broker, tmp_path, monkeypatch) as loop:
            brigade(loop.db, hq, "siming-fire")
            hq.outage(503, hang_s=8.0)  # longer than the sender's timeout: POSTs in flight
            t_down = time.monotonic()
            loop.field_event("smk-0001", "smoke")
            await until(lambda: hq.requests, 15, "a first attempt at the brigade")
            assert loop.sims is not None
            loop.sims.device("smk-0002").trigger("smoke")  # a second alarm, the first's Update
            await until(lambda: len(open_rows(loop.db, "siming-fire")) >= 3, 15, "3 messages")
            await until(lambda: any(r.state == Delivery.SENDING
                                    for r in open_rows(loop.db, "siming-fire")), 15,
                        "a message in flight")  # fmt: skip
            await asyncio.to_thread(loop.cloud.kill9)  # the supervisor restarts it
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_down)))  # the outage
            hq.restore()
            t_up = time.monotonic()
            await until(lambda: all(r.state == Delivery.DELIVERED
                                    for r in open_rows(loop.db, "siming-fire")), 60,
                        "every message delivered")  # fmt: skip
            drained = time.monotonic() - t_up
            rows = open_rows(loop.db, "siming-fire")
            log = loop.cloud.log()
    assert "were being sent at a crash: resending" in log, "the kill cut a POST in flight"
    print(f"{len(rows)} messages; outage {OUTAGE_S:.0f} s; drained {drained:.1f} s after")
    keys = [p.key for p in hq.processed]
    assert sorted(keys) == sorted(r.message_id for r in rows), "each key processed, once"
    for alarm in {r.alarm_id for r in rows}:
        in_seq = [r.message_id for r in rows if r.alarm_id == alarm]
        assert [k for k in keys if k in in_seq] == in_seq, f"alarm {alarm} in order"
    bodies: dict[str, set[bytes]] = {}
    for req in hq.requests:
        bodies.setdefault(req.headers.get("idempotency-key", ""), set()).add(req.body)
    assert all(len(b) == 1 for b in bodies.values()), "a retry sends the same bytes"
    assert hq.bad_signatures == 0
    assert drained < 35.0, f"drained {drained:.1f} s after the brigade came back"


async def test_the_worker_serves_its_app_to_brigades_over_mutual_tls(
    broker: Mosquitto, tmp_path: Path
) -> None:
    pki = make_test_pki(tmp_path / "pki", [], extra_clients=("siming-fire",))
    web, port = free_port(), free_port()
    listen = {"listen": f"127.0.0.1:{port}", "cert_file": str(pki.server.cert),
              "key_file": str(pki.server.key), "client_ca_file": str(pki.ca_cert)}  # fmt: skip
    config = cloud_config(
        broker, tmp_path, brigade={"listen": listen},
        dispatch={"http_listen": f"127.0.0.1:{web}", "public_base_url": f"http://127.0.0.1:{web}"},
    )  # fmt: skip
    client = pki.clients["siming-fire"]
    with_cert = ssl.create_default_context(cafile=str(pki.ca_cert))
    with_cert.load_cert_chain(str(client.cert), str(client.key))
    url = f"https://127.0.0.1:{port}/readyz"
    async with cloud_worker(config):
        async with httpx.AsyncClient(verify=with_cert, timeout=10) as http:
            got = await http.get(url)
        assert got.status_code in (200, 503) and "parts" in got.json()
        no_cert = ssl.create_default_context(cafile=str(pki.ca_cert))
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            async with httpx.AsyncClient(verify=no_cert, timeout=10) as http:
                await http.get(url)
