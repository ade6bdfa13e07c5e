"""The gateway's uplink in each mode it must speak: MQTT 3.1.1 and 5, mutual TLS against the
production Mosquitto config and ACL, username/password, and the embedded amqtt broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge.config import GatewayConfig
from edge.gateway import Gateway
from edge.profile import ProfileSet
from edge.site import Site
from gridalarm.brokers import Mosquitto, embedded_amqtt
from tests.deploy.mosquitto_harness import (
    Broker,
    Client,
    Tls,
    free_port,
    render_production,
)
from tests.deploy.pki import make_test_pki
from tests.support import Recorder
from wire import Quality

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def gateway(
    tmp_path: Path, mqtt: dict[str, object], gateway_id: str = "gw-01"
) -> AsyncIterator[Gateway]:
    config = GatewayConfig.model_validate(
        {
            "gateway_id": gateway_id,
            "mqtt": mqtt,
            "outbox": {"path": str(tmp_path / "outbox.sqlite")},
            "state_dir": str(tmp_path),
        }
    )
    gw = Gateway(Site(tmp_path / "gateway.yaml", config, ProfileSet.load([])))
    task = asyncio.create_task(gw.run())
    try:
        await asyncio.wait_for(gw.uplink.connected.wait(), 15)
        yield gw
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def emit_and_drain(gw: Gateway, n: int) -> None:
    for i in range(n):
        gw.emitter.data(f"dev-{i % 3}", time.time(), Quality.GOOD, {"level_mm": float(i)})
    deadline = time.monotonic() + 15
    while gw.forwarder.acked < n:
        assert time.monotonic() < deadline, f"only {gw.forwarder.acked} of {n} acknowledged"
        await asyncio.sleep(0.02)


async def wait_messages(rec: Recorder | Client, count: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        n = len(rec.snapshot()) if isinstance(rec, Recorder) else len(rec.received)
        if n >= count:
            return
        assert time.monotonic() < deadline, f"got {n} of {count} messages"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_plain_mqtt_both_protocol_versions(
    broker: Mosquitto, tmp_path: Path, protocol: str
) -> None:
    rec = Recorder(broker.port, "ga/v1/gw-01/#", client_id=f"rec-{protocol}")
    try:
        async with gateway(tmp_path, {"url": broker.url, "protocol": protocol}) as gw:
            await emit_and_drain(gw, 50)
            await wait_messages(rec, 51)  # birth status + 50 data
        seqs = sorted(json.loads(p)["seq"] for t, p, _ in rec.snapshot() if "/dev/" in t)
        assert seqs == list(range(1, 51))
    finally:
        rec.close()


async def test_username_password(tmp_path: Path) -> None:
    port = free_port()
    passwords = tmp_path / "passwd"
    # mosquitto_passwd ships in Debian's mosquitto package beside the broker
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "gw-01", "s3cret"], check=True)
    conf = tmp_path / "m.conf"
    run_as = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n{run_as}"
    )
    broker = Broker(conf, port, tmp_path / "m.log").start()
    try:
        async with gateway(
            tmp_path / "ok",
            {"url": f"mqtt://127.0.0.1:{port}", "username": "gw-01", "password": "s3cret"},
        ) as gw:
            await emit_and_drain(gw, 5)
        with pytest.raises(TimeoutError):
            async with gateway(
                tmp_path / "bad",
                {"url": f"mqtt://127.0.0.1:{port}", "username": "gw-01", "password": "wrong"},
            ):
                pass
    finally:
        broker.stop()


async def test_mutual_tls_against_production_config(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path / "pki", ["gw-01"])
    config, port = render_production(tmp_path, pki)
    broker = Broker(config, port, tmp_path / "mosquitto.log").start()
    cloud = Client(
        "cloud", tls=Tls(pki.ca_cert, pki.clients["cloud"].cert, pki.clients["cloud"].key)
    )
    try:
        cloud.connect(port)
        cloud.subscribe("ga/v1/#", qos=1)
        tls = {
            "ca_file": str(pki.ca_cert),
            "cert_file": str(pki.clients["gw-01"].cert),
            "key_file": str(pki.clients["gw-01"].key),
        }
        async with gateway(tmp_path / "gw", {"url": f"mqtts://127.0.0.1:{port}", "tls": tls}) as gw:
            await emit_and_drain(gw, 20)
            await wait_messages(cloud, 21)
        topics = [m.topic for m in cloud.received]
        assert topics.count("ga/v1/gw-01/status") >= 1
        assert sum(1 for t in topics if t.startswith("ga/v1/gw-01/dev/")) == 20
    finally:
        cloud.close()
        broker.stop()


async def test_embedded_amqtt_speaks_311(tmp_path: Path) -> None:
    async with embedded_amqtt() as info:
        # the broker runs on this loop: the recorder's blocking subscribe must not
        rec = await asyncio.to_thread(Recorder, info.port, "ga/v1/gw-01/#", "rec-amqtt")
        try:
            async with gateway(tmp_path, {"url": info.url, "protocol": "3.1.1"}) as gw:
                await emit_and_drain(gw, 30)
                await wait_messages(rec, 31)
        finally:
            await asyncio.to_thread(rec.close)
