"""Kill -9 the cloud while gateways keep publishing, restart it: every message published
meanwhile is processed exactly once (the broker kept them for the cloud's persistent session;
redeliveries are dropped by sequence number), and no alarm transition is doubled."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from cloud.database import open_database
from cloud.ingest.checkpoint import read_checkpoint
from cloud.lifecycle.rule_alarms import list_events
from edge.gateway import run_gateway
from firmware_sim import SimulatorSet
from gridalarm.brokers import Mosquitto
from rigs.cloud import REGISTRY, write_rules
from rigs.gateway import rig_sim_config, sequenced, write_gateway_config
from rules import DeviceInfo
from rules.devices_csv import write_devices_csv
from tests.support import Recorder, until
from wire import DataMessage, encode
from wire.dedup import SeqTracker
from wire.topics import data_topic

pytestmark = pytest.mark.integration

LOAD_DEVICES = [
    DeviceInfo(f"fl-load-{i:02d}", "gw-load", "flood", "grid-2", "", "c-1", 60.0) for i in range(20)
]


class CloudProcess:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.dir / "cloud.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gridalarm",
                    "cloud",
                    "run",
                    "--config",
                    str(self.dir / "cloud.yaml"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(30)

    def log(self) -> str:
        return (self.dir / "cloud.log").read_text(errors="replace")


def write_cloud(directory: Path, broker: Mosquitto) -> None:
    write_rules(directory)
    (directory / "devices.csv").write_text(
        write_devices_csv([*REGISTRY, *LOAD_DEVICES]), encoding="utf-8"
    )
    config = {
        "mqtt": {"url": broker.url, "client_id": "cloud-restart"},
        "database_url": "sqlite:///cloud.sqlite",
        "rules_dir": "rules",
        "devices_csv": "devices.csv",
        "sink": {"kind": "sqlite", "path": "readings.sqlite"},
        "metrics_listen": None,
    }
    (directory / "cloud.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


def load_publisher(port: int, stop: threading.Event, sent: list[int]) -> None:
    """A second gateway publishing ~400 msg/s with its own sequence numbers."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-load")
    client.connect("127.0.0.1", port)
    client.loop_start()
    seq = 0
    while not stop.is_set() and seq < 20_000:
        seq += 1
        dev = LOAD_DEVICES[seq % len(LOAD_DEVICES)].device
        msg = DataMessage(
            gw="gw-load", dev=dev, seq=seq, ts=time.time(), values={"level_mm": float(seq % 100)}
        )
        client.publish(data_topic("gw-load", dev), encode(msg), qos=1).wait_for_publish(5)
        sent.append(seq)
        stop.wait(0.0025)  # pacing of a busy gateway, not a wait for a condition
    client.disconnect()
    client.loop_stop()


def counts(directory: Path) -> dict[str, int]:
    db = open_database(f"sqlite:///{directory / 'cloud.sqlite'}")
    try:
        return read_checkpoint(db, "counts") or {}
    finally:
        db.dispose()


async def test_kill9_cloud_processes_everything_exactly_once(
    broker: Mosquitto, tmp_path: Path
) -> None:
    cloud = CloudProcess(tmp_path / "cloud")
    cloud.dir.mkdir()
    write_cloud(cloud.dir, broker)
    recorder = Recorder(broker.port, "ga/v1/+/dev/#", client_id="restart-watch")
    stop, sent = threading.Event(), []
    loader = threading.Thread(target=load_publisher, args=(broker.port, stop, sent))
    cloud.start()
    # the cloud's session must exist before anything is published for it
    await until(lambda: "(session present" in cloud.log(), 30, "the cloud to subscribe")
    async with SimulatorSet.from_config(rig_sim_config()) as sims:
        gw = asyncio.create_task(run_gateway(write_gateway_config(sims, broker, tmp_path / "gw")))
        try:
            await until(
                lambda: counts(cloud.dir).get("data", 0) > 0, 30, "the cloud's first checkpoint"
            )
            loader.start()
            await until(lambda: len(sent) > 800, 30, "load to build up")
            sims.device("smk-0001").trigger("smoke")
            cloud.kill9()
            killed_at = len(sent)
            sims.device("smk-0002").trigger("smoke")
            await until(
                lambda: len(sent) > killed_at + 800,
                30,
                "publishing to go on while the cloud is dead",
            )
            cloud.start()
            await until(
                lambda: len(sent) > killed_at + 1600, 30, "more publishing after the restart"
            )
        finally:
            stop.set()
            await asyncio.to_thread(loader.join, 30)
            gw.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gw
    published = {(m["gw"], m["seq"]): m for m in sequenced(recorder.snapshot())}
    recorder.close()
    data = [m for m in published.values() if m["t"] == "data"]
    expected = {
        "data": len(data),
        "event": sum(1 for m in published.values() if m["t"] == "event"),
        "readings": sum(len(m["values"]) for m in data),
    }
    try:
        await until(
            lambda: {k: counts(cloud.dir).get(k) for k in expected} == expected,
            60,
            f"the cloud to process exactly {expected}",
        )
    finally:
        code = cloud.stop()
    assert code == 0, cloud.log()[-3000:]
    final = counts(cloud.dir)
    assert {k: final[k] for k in expected} == expected
    db = open_database(f"sqlite:///{cloud.dir / 'cloud.sqlite'}")
    events = [(e["key"], e["kind"]) for e in list_events(db)]
    assert events.count(("smk-0001/smoke-fire", "raise")) == 1
    assert events.count(("smk-0002/smoke-fire", "raise")) == 1
    assert len(events) == len(set(events)), f"a transition was doubled: {events}"
    dedup = read_checkpoint(db, "dedup")
    db.dispose()
    tracker = SeqTracker.restore(dedup)
    assert dedup["gw-load"]["w"] == max(sent), "every load seq seen"
    assert not tracker.gaps("gw-load") and not tracker.lost("gw-load"), "no gap"
    readings = open_database(f"sqlite:///{cloud.dir / 'readings.sqlite'}")
    with readings.connect() as conn:
        rows = conn.exec_driver_sql("SELECT COUNT(*) FROM readings").scalar()
    readings.dispose()
    assert rows == sum(1 for m in data if m["values"]), "each data message stored once in the sink"
    assert json.loads(json.dumps(final))  # the checkpoint is plain JSON
    assert os.path.exists(cloud.dir / "cloud.sqlite")
