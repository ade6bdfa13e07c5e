"""The recorder against a real Mosquitto speaking TLS (production.conf: mutual TLS, the ACL).

The broker, its PKI and the paho publisher are the deploy tests' own (tests/deploy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from replay.cli import record_cmd
from replay.errors import BrokerUnreachable, ReplayError
from replay.link import BrokerTls
from replay.reader import RecordingReader
from replay.record import Recorder, RecordOptions
from tests.deploy.mosquitto_harness import Broker, Client, render_production, tls_client
from tests.deploy.pki import PkiPaths, make_test_pki
from tests.support import until
from wire import DataMessage, GatewayStatus, encode
from wire.topics import data_topic, status_topic

GATEWAY = "gw-01"


@pytest.fixture
def pki(tmp_path: Path) -> PkiPaths:
    return make_test_pki(tmp_path / "pki", [GATEWAY])  # clients gw-01 and cloud


@pytest.fixture
def port(tmp_path: Path, pki: PkiPaths) -> Iterator[int]:
    config, port = render_production(tmp_path, pki)
    broker = Broker(config, port, tmp_path / "mosquitto.log").start()
    try:
        yield port
    finally:
        broker.stop()


@pytest.fixture
def gateway(pki: PkiPaths, port: int) -> Iterator[Client]:
    client = tls_client(pki, GATEWAY).connect(port)
    try:
        yield client
    finally:
        client.close()


def cloud_tls(pki: PkiPaths) -> BrokerTls:
    pair = pki.clients["cloud"]
    return BrokerTls(ca_file=pki.ca_cert, cert_file=pair.cert, key_file=pair.key)


async def test_records_over_mutual_tls(
    pki: PkiPaths, port: int, gateway: Client, tmp_path: Path
) -> None:
    out = tmp_path / "tls.jsonl.gz"
    url = f"mqtts://localhost:{port}"
    recorder = Recorder(RecordOptions(url, out, tls=cloud_tls(pki)))
    task = asyncio.create_task(recorder.run())
    await until(lambda: recorder.subscribed.is_set() or task.done(), 20, "the TLS subscription")
    assert not task.done(), task.exception()
    sent = [
        (data_topic(GATEWAY, "smk-1"), encode(DataMessage(GATEWAY, "smk-1", seq, float(seq),
                                                          values={"temperature_c": 20.0})))
        for seq in range(1, 21)
    ]  # fmt: skip
    gateway.wait_acked([gateway.publish(t, p) for t, p in sent])
    await until(lambda: recorder.messages >= len(sent), 20, "every message recorded")
    recorder.stop()
    assert await asyncio.wait_for(task, 10) == len(sent)
    with RecordingReader(out) as reader:
        entries = list(reader.entries())
    assert [(e.topic, e.payload_bytes()) for e in entries] == sent


@pytest.mark.parametrize("how", ["no-client-cert", "other-ca", "plain-mqtt-to-tls-port"])
async def test_a_broker_that_refuses_us_is_unreachable_with_a_reason(
    pki: PkiPaths, port: int, tmp_path: Path, how: str
) -> None:
    url, tls = f"mqtts://127.0.0.1:{port}", cloud_tls(pki)
    if how == "no-client-cert":
        tls = BrokerTls(ca_file=pki.ca_cert)
    elif how == "other-ca":
        other = make_test_pki(tmp_path / "other", [GATEWAY])
        tls = BrokerTls(ca_file=other.ca_cert, cert_file=tls.cert_file, key_file=tls.key_file)
    else:
        url, tls = f"mqtt://127.0.0.1:{port}", None
    recorder = Recorder(RecordOptions(url, tmp_path / "r.gz", tls=tls))
    with pytest.raises(BrokerUnreachable, match="cannot connect"):
        await asyncio.wait_for(recorder.run(), 30)
    assert recorder.messages == 0


@pytest.mark.parametrize(
    ("url", "tls", "message"),
    [
        ("mqtt://127.0.0.1:1", BrokerTls(ca_file=Path("ca.crt")), "mqtts://"),
        ("mqtts://127.0.0.1:1", BrokerTls(ca_file=Path("/nonexistent/ca.crt")), "ca.crt"),
        ("mqtts://127.0.0.1:1", BrokerTls(cert_file=Path("/nonexistent/c.crt")), "--key"),
        ("mqtts://127.0.0.1:1", BrokerTls(key_file=Path("/nonexistent/c.key")), "--cert"),
        ("mqtts://127.0.0.1:1", BrokerTls(cert_file=Path("/no/c.crt"), key_file=Path("/no/c.key")),
         "c.crt"),
        ("ws://127.0.0.1:1", None, "mqtts://"),
    ],
)  # fmt: skip
async def test_bad_tls_settings_are_bad_input(
    url: str, tls: BrokerTls | None, message: str, tmp_path: Path
) -> None:
    recorder = Recorder(RecordOptions(url, tmp_path / "r.gz", tls=tls))
    with pytest.raises(ReplayError, match=message) as info:
        await recorder.run()
    assert not isinstance(info.value, BrokerUnreachable)


def test_gridalarm_record_takes_ca_cert_and_key(
    pki: PkiPaths, port: int, gateway: Client, tmp_path: Path
) -> None:
    birth = encode(GatewayStatus(GATEWAY, "online", 1.0))
    gateway.wait_acked([gateway.publish(status_topic(GATEWAY), birth, retain=True)])
    app = typer.Typer()
    app.command("record")(record_cmd)
    app.command("other")(lambda: None)
    out, pair = tmp_path / "cli.jsonl.gz", pki.clients["cloud"]
    args = ["record", "--broker", f"mqtts://localhost:{port}", "--out", str(out),
            "--ca-file", str(pki.ca_cert), "--cert", str(pair.cert), "--key", str(pair.key),
            "--duration", "1.5"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with RecordingReader(out) as reader:
        entries = list(reader.entries())
    assert [(e.topic, e.payload_bytes(), e.retain) for e in entries] == [
        (status_topic(GATEWAY), birth, True)
    ]
    bad = CliRunner().invoke(app, [*args[:5], "--duration", "1"])  # no CA, no client cert
    assert bad.exit_code == 3, bad.output
    assert "cannot connect" in bad.output
