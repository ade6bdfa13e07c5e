"""The recorder against a real Mosquitto: what a paho publisher sends is what the file holds."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from gridalarm.brokers import Mosquitto, free_port
from replay.reader import RecordingReader
from replay.record import Recorder, RecordOptions
from replay.recording import header_devices
from rules import DeviceInfo
from tests.support import until, wait_until
from wire import DataMessage, EventMessage, GatewayStatus, encode
from wire.topics import data_topic, event_topic, status_topic

DEVICES = [DeviceInfo("smk-1", "gw-1", "smoke")]


def _publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-pub")
    client.connect("127.0.0.1", port, 30)
    client.loop_start()
    return client


def _wire(n: int) -> list[tuple[str, bytes]]:
    out = []
    for seq in range(1, n + 1):
        if seq % 10 == 0:
            m: DataMessage | EventMessage = EventMessage(
                "gw-1", "smk-1", seq, 1.0 * seq, "test_button", True
            )
            out.append((event_topic("gw-1", "smk-1"), encode(m)))
        else:
            m = DataMessage("gw-1", "smk-1", seq, 1.0 * seq, values={"temperature_c": 20.0 + seq})
            out.append((data_topic("gw-1", "smk-1"), encode(m)))
    return out


async def test_records_every_message_with_retained_status(
    broker: Mosquitto, tmp_path: Path
) -> None:
    pub = _publisher(broker.port)
    birth = encode(GatewayStatus("gw-1", "online", 1.0))
    pub.publish(status_topic("gw-1"), birth, qos=1, retain=True).wait_for_publish(5)
    out = tmp_path / "rec.jsonl.gz"
    recorder = Recorder(RecordOptions(broker.url, out, devices=DEVICES))
    task = asyncio.create_task(recorder.run())
    await asyncio.wait_for(recorder.subscribed.wait(), 10)
    sent = _wire(200)
    started = time.time()
    for topic, payload in sent:
        pub.publish(topic, payload, qos=1)
    await until(lambda: recorder.messages >= 201, 10, "201 messages recorded")
    recorder.stop()
    assert await asyncio.wait_for(task, 10) == 201
    pub.loop_stop()
    pub.disconnect()
    with RecordingReader(out) as reader:
        entries = list(reader.entries())
    assert reader.header.broker == broker.url and header_devices(reader.header, "r") == DEVICES
    assert (entries[0].topic, entries[0].payload_bytes(), entries[0].retain) == (
        status_topic("gw-1"),
        birth,
        True,
    )
    assert [(e.topic, e.payload_bytes()) for e in entries[1:]] == sent
    assert not any(e.retain for e in entries[1:])
    rts = [e.rt for e in entries[1:]]
    assert rts == sorted(rts) and started - 1 <= rts[0] <= time.time()


async def test_duration_stops_the_recorder(broker: Mosquitto, tmp_path: Path) -> None:
    recorder = Recorder(RecordOptions(broker.url, tmp_path / "r.gz", duration_s=0.3))
    assert await asyncio.wait_for(recorder.run(), 10) == 0
    with RecordingReader(tmp_path / "r.gz") as reader:
        assert list(reader.entries()) == []


def test_unreachable_broker_exits_3(tmp_path: Path) -> None:
    import typer

    from replay.cli import record_cmd

    app = typer.Typer()
    app.command("record")(record_cmd)
    app.command("other")(lambda: None)
    url = f"mqtt://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["record", "--broker", url, "--out", str(tmp_path / "r.gz")])
    assert result.exit_code == 3, result.output
    assert "cannot connect" in result.output


@pytest.mark.parametrize("how", ["term", "kill"])
def test_sigterm_and_kill9_keep_what_was_recorded(
    broker: Mosquitto, tmp_path: Path, how: str
) -> None:
    out = tmp_path / f"{how}.gz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "replay.cli", "record", "--broker", broker.url,
         "--out", str(out)],
        cwd=Path(__file__).resolve().parents[2], env={**os.environ, "PYTHONPATH": "."},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    pub = _publisher(broker.port)
    try:
        wait_until(lambda: out.exists() and out.stat().st_size > 0, 20, "recorder started")

        def recorded() -> bool:  # it subscribes right after its header: publish until it has some
            for topic, payload in _wire(20):
                pub.publish(topic, payload, qos=1)
            time.sleep(0.2)
            return out.stat().st_size > 200

        wait_until(recorded, 20, "messages flushed to the file")
        time.sleep(1.2)  # one flush interval
        proc.send_signal(signal.SIGTERM if how == "term" else signal.SIGKILL)
        proc.wait(10)
    finally:
        pub.loop_stop()
        pub.disconnect()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    with RecordingReader(out) as reader:
        entries = list(reader.entries())
    assert entries
    assert reader.stats.truncated is (how == "kill")
    if how == "term":
        assert proc.returncode == 0
