"""A cluster rig: `gridalarm cloud run` worker processes of the scaled mode, a numbered load
with alarms in it, and readers of what the workers' checkpoints say (tests and benchmarks).

Devices are flood gauges; device 0 of each gateway crosses the test flood rule's threshold up
and down, so alarms are raised and cleared all through a run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from cloud.cluster.leases import leases
from cloud.ingest.checkpoint import checkpoints
from gridalarm.brokers import free_port
from gridalarm.fleetcheck import handled
from rigs.cloud import district as rig_district
from rigs.cloud import twilio_environ, write_rules
from rigs.standins import TwilioStandin
from rules import DeviceInfo
from rules.devices_csv import write_devices_csv
from wire import DataMessage, encode
from wire.dedup import SeqTracker
from wire.topics import data_topic

HIGH, LOW = 200.0, 50.0  # the test flood rule raises at 150 and clears at 130


def district(gateways: int, per_gateway: int) -> list[DeviceInfo]:
    """*gateways* gateways of *per_gateway* flood gauges each."""
    return [
        DeviceInfo(f"gw-{g:03d}-fl{k}", f"gw-{g:03d}", "flood", "grid-1", f"b-{g}", "c-1", 60.0)
        for g in range(gateways)
        for k in range(per_gateway)
    ]


class Worker:
    """One `gridalarm cloud run` process of the cluster."""

    def __init__(self, directory: Path, name: str, env: dict[str, str] | None = None) -> None:
        """*env*: more environment (provider credentials, secrets) for the process."""
        self.dir, self.name = directory, name
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.logfile = directory / f"{name}.log"
        self.metrics_port = free_port()

    def start(self) -> None:
        with self.logfile.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gridalarm", "cloud", "run", "--config",
                 str(self.dir / "cloud.yaml"), "--worker-id", self.name,
                 "--metrics-listen", f"127.0.0.1:{self.metrics_port}"],
                stdout=log, stderr=subprocess.STDOUT, env=self.env,
            )  # fmt: skip

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(10)

    def reap(self) -> None:
        """Kill the process if it still runs (a test that failed half-way)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
        return self.proc.wait(60)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def owned(self) -> set[int]:
        """The partitions this worker's /metrics says it holds."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        return {
            int(m.group(1))
            for m in re.finditer(
                r'^gridalarm_partition_owned\{partition="(\d+)"\} 1\.0$', text, re.M
            )
        }


def write_cluster(
    directory: Path,
    urls: list[str],
    pg_url: str,
    devices: list[DeviceInfo],
    cluster: dict[str, object],
    **mqtt: object,
) -> None:
    """cloud.yaml (no sink, no dispatch), the test rules and devices.csv in *directory*."""
    write_rules(directory)
    (directory / "devices.csv").write_text(write_devices_csv(devices), encoding="utf-8")
    config = {
        "mqtt": {"url": urls[0], "failover": urls[1:], **mqtt},
        "database_url": pg_url,
        "rules_dir": "rules",
        "devices_csv": "devices.csv",
        "sink": {"kind": "none"},
        "metrics_listen": None,
        "cluster": cluster,
    }
    (directory / "cloud.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


def add_dispatch(
    directory: Path, devices: list[DeviceInfo], twilio: TwilioStandin
) -> dict[str, str]:
    """Dispatch for the cluster's district: its workers, shifts and places, the test
    lifecycle, and the environment that points SMS at the stand-in."""
    reg = rig_district(directory)
    (reg / "devices.csv").write_text(write_devices_csv(devices), encoding="utf-8")
    places = "device,lat,lon,address,building,floor,owner,owner_phone\n" + "".join(
        f"{d.device},24.4800,118.0900,叶厝路{n}号,{d.building},1,,\n" for n, d in enumerate(devices)
    )
    (reg / "device_locations.csv").write_text(places, encoding="utf-8")
    config = yaml.safe_load((directory / "cloud.yaml").read_text(encoding="utf-8"))
    config["dispatch"] = {
        "registry_dir": "district", "lifecycle": "lifecycle.yaml",
        "http_listen": "127.0.0.1:0", "public_base_url": "http://127.0.0.1",
    }  # fmt: skip
    (directory / "cloud.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return twilio_environ(twilio)


class Load:
    """Gateways publishing numbered readings; device 0 of each gateway crosses the flood
    threshold up and down, so alarms are raised (and cleared) all through the run. With
    several broker ports (a cluster's nodes) a lost connection moves to the next node and the
    unacknowledged message goes again, same seq, as a gateway's outbox does."""

    def __init__(self, ports: list[int], devices: list[DeviceInfo], pause_s: float = 0.004) -> None:
        """*pause_s* between messages: ~200 msg/s by default, the pace of a busy district."""
        self.ports = ports
        self.pause_s = pause_s
        self.stop = threading.Event()
        self.by_gateway: dict[str, list[str]] = {}
        for d in devices:
            self.by_gateway.setdefault(d.gateway, []).append(d.device)
        self.gateways = sorted(self.by_gateway)
        self.seqs = dict.fromkeys(self.gateways, 0)
        self.values: dict[str, list[float]] = {d.device: [] for d in devices}
        self.thread = threading.Thread(target=self._run, name="cluster-load")
        self.reconnects = 0

    def published(self) -> int:
        return sum(self.seqs.values())

    def close(self) -> None:
        """Stop publishing (the message in hand is finished first)."""
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(30)

    def _connect(self, attempt: int) -> mqtt.Client | None:
        port = self.ports[attempt % len(self.ports)]
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="cluster-load", protocol=mqtt.MQTTv311
        )
        up = threading.Event()
        client.on_connect = lambda *_a: up.set()
        try:
            client.connect("127.0.0.1", port, 10)
        except OSError:
            return None
        client.loop_start()
        if not up.wait(10):
            client.loop_stop()
            return None
        return client

    def _run(self) -> None:
        attempt, n = 0, 0
        client = self._connect(attempt)
        while not self.stop.is_set():
            if client is None or not client.is_connected():
                if client is not None:
                    client.loop_stop()
                attempt += 1
                self.reconnects += 1
                client = self._connect(attempt)
                continue
            gw = self.gateways[n % len(self.gateways)]
            seq = self.seqs[gw] + 1
            mine = self.by_gateway[gw]
            k = seq % len(mine)
            dev = mine[k]
            level = HIGH if k == 0 and (seq // (8 * len(mine))) % 2 else LOW
            msg = DataMessage(gw=gw, dev=dev, seq=seq, ts=time.time(), values={"level_mm": level})
            info = client.publish(data_topic(gw, dev), encode(msg), qos=1)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(5)
            if not info.is_published():
                continue  # not acknowledged: the same message again, on the next node
            self.seqs[gw] = seq
            self.values[dev].append(level)
            n += 1
            self.stop.wait(self.pause_s)  # pacing, not a wait for a condition
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def expected_raises(self) -> int:
        raises = 0
        for values in self.values.values():
            high = False
            for v in values:
                if not high and v >= 150:
                    raises, high = raises + 1, True
                elif high and v <= 130:
                    high = False
        return raises


def subscribed(workers: dict[str, Worker]) -> int:
    """Partitions whose broker confirmed their subscriptions."""
    found = set()
    for w in workers.values():
        found |= set(re.findall(r"gridalarm-cloud-p(\d+): subscribed", w.log()))
    return len(found)


def missing(db: sa.Engine, load: Load) -> str:
    """Per gateway: the sequences the checkpoints have not seen (for a failure's message)."""
    trackers = seen(db)
    out = {}
    for gw, last in load.seqs.items():
        tracker = trackers.get(gw)
        if tracker is None:
            out[gw] = f"nothing of 1..{last}"
            continue
        top = tracker.snapshot()[gw]["w"]
        gaps = tracker.gaps(gw) + ([(top + 1, last)] if top < last else [])
        if gaps:
            out[gw] = str(gaps)
    return f"processed {processed(db)} of {load.published()}; missing {out}"


def owners(db: sa.Engine) -> dict[int, str | None]:
    """Each partition's live owner (None: free or expired); {} before the first worker made
    the lease table."""
    try:
        with db.connect() as conn:
            return {r.partition: r.owner if r.live else None for r in leases(conn)}
    except sa.exc.ProgrammingError:
        return {}


def all_owned(db: sa.Engine, partitions: int) -> bool:
    held = owners(db)
    return len(held) == partitions and all(o is not None for o in held.values())


def epochs(db: sa.Engine) -> dict[int, int]:
    with db.connect() as conn:
        return {r.partition: r.epoch for r in leases(conn)}


def partition_rows(db: sa.Engine, name: str) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(checkpoints.c.value).where(checkpoints.c.name.like(f"{name}.p%"))
        ).scalars()
        return [json.loads(v) for v in rows]


def processed(db: sa.Engine) -> int:
    """Sequenced messages the partitions' checkpoints counted."""
    return handled(partition_rows(db, "counts"))


def seen(db: sa.Engine) -> dict[str, SeqTracker]:
    out: dict[str, SeqTracker] = {}
    for state in partition_rows(db, "dedup"):
        for gw in state:
            out[gw] = SeqTracker.restore({gw: state[gw]})
    return out
