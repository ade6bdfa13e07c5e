"""Three cloud workers over one PostgreSQL share the gateways by partition leases: kill -9 one,
pause another past its lease (SIGSTOP) and wake it — every field message is processed exactly
once (per-partition checkpoints count exactly what was published, every sequence seen), every
alarm is raised once, and the paused worker writes nothing after it was replaced."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from cloud.cluster.leases import leases
from cloud.cluster.partition import partition_of
from cloud.database import open_database
from cloud.ingest.checkpoint import checkpoints
from cloud.lifecycle.rule_alarms import alarms
from gridalarm.brokers import Mosquitto, free_port
from rigs.cloud import write_rules
from rigs.nats import NatsCluster
from rules import DeviceInfo
from rules.devices_csv import write_devices_csv
from tests.postgres import find_bin, postgres_server
from tests.support import need_service, until
from wire import DataMessage, encode
from wire.dedup import SeqTracker
from wire.topics import data_topic

pytestmark = pytest.mark.integration

PARTITIONS = 8
LEASE_S = 3.0
GATEWAYS = [f"gw-{n:02d}" for n in range(16)]
PER_GATEWAY = 4
DEVICES = [
    DeviceInfo(f"{gw}-fl{k}", gw, "flood", "grid-1", f"b-{gw}", "c-1", 60.0)
    for gw in GATEWAYS
    for k in range(PER_GATEWAY)
]
HIGH, LOW = 200.0, 50.0  # the test flood rule raises at 150 and clears at 130


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if find_bin() is None:
        need_service("PostgreSQL")
    with postgres_server() as url:
        yield url


class Worker:
    """One `gridalarm cloud run` process of the cluster."""

    def __init__(self, directory: Path, name: str) -> None:
        self.dir, self.name = directory, name
        self.proc: subprocess.Popen[bytes] | None = None
        self.logfile = directory / f"{name}.log"
        self.metrics_port = free_port()

    def start(self) -> None:
        with self.logfile.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gridalarm", "cloud", "run", "--config",
                 str(self.dir / "cloud.yaml"), "--worker-id", self.name,
                 "--metrics-listen", f"127.0.0.1:{self.metrics_port}"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(10)

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


def write_cluster(directory: Path, urls: list[str], pg_url: str, **mqtt: object) -> None:
    write_rules(directory)
    (directory / "devices.csv").write_text(write_devices_csv(DEVICES), encoding="utf-8")
    config = {
        "mqtt": {"url": urls[0], "failover": urls[1:], **mqtt},
        "database_url": pg_url,
        "rules_dir": "rules",
        "devices_csv": "devices.csv",
        "sink": {"kind": "none"},
        "metrics_listen": None,
        "cluster": {"partitions": PARTITIONS, "lease_s": LEASE_S, "sweep_s": 1.0},
    }
    (directory / "cloud.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


class Load:
    """Gateways publishing numbered readings; device 0 of each gateway crosses the flood
    threshold up and down, so alarms are raised (and cleared) all through the run. With
    several broker ports (a cluster's nodes) a lost connection moves to the next node and the
    unacknowledged message goes again, same seq, as a gateway's outbox does."""

    def __init__(self, *ports: int) -> None:
        self.ports = ports
        self.stop = threading.Event()
        self.seqs = dict.fromkeys(GATEWAYS, 0)
        self.values: dict[str, list[float]] = {d.device: [] for d in DEVICES}
        self.thread = threading.Thread(target=self._run, name="cluster-load")
        self.reconnects = 0

    def published(self) -> int:
        return sum(self.seqs.values())

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
            gw = GATEWAYS[n % len(GATEWAYS)]
            seq = self.seqs[gw] + 1
            k = seq % PER_GATEWAY
            dev = f"{gw}-fl{k}"
            level = HIGH if k == 0 and (seq // (8 * PER_GATEWAY)) % 2 else LOW
            msg = DataMessage(gw=gw, dev=dev, seq=seq, ts=time.time(), values={"level_mm": level})
            info = client.publish(data_topic(gw, dev), encode(msg), qos=1)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(5)
            if not info.is_published():
                continue  # not acknowledged: the same message again, on the next node
            self.seqs[gw] = seq
            self.values[dev].append(level)
            n += 1
            self.stop.wait(0.004)  # ~200 msg/s: the pace of a busy district, not a wait
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


def all_owned(db: sa.Engine) -> bool:
    held = owners(db)
    return len(held) == PARTITIONS and all(o is not None for o in held.values())


def epochs(db: sa.Engine) -> dict[int, int]:
    with db.connect() as conn:
        return {r.partition: r.epoch for r in leases(conn)}


def partition_rows(db: sa.Engine, name: str) -> list[dict[str, object]]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(checkpoints.c.value).where(checkpoints.c.name.like(f"{name}.p%"))
        ).scalars()
        return [json.loads(v) for v in rows]


def processed(db: sa.Engine) -> int:
    return sum(int(c.get("data", 0)) for c in partition_rows(db, "counts"))  # type: ignore[call-overload]


def seen(db: sa.Engine) -> dict[str, SeqTracker]:
    out: dict[str, SeqTracker] = {}
    for state in partition_rows(db, "dedup"):
        for gw in state:
            out[gw] = SeqTracker.restore({gw: state[gw]})
    return out


async def test_workers_share_partitions_and_survive_kill9_and_a_pause(
    broker: Mosquitto, pg_url: str, tmp_path: Path
) -> None:
    write_cluster(tmp_path, [broker.url], pg_url)
    db = open_database(pg_url)
    workers = {name: Worker(tmp_path, name) for name in ("w1", "w2", "w3")}
    load = Load(broker.port)
    try:
        for w in workers.values():
            w.start()
        # the partitions' sessions must exist before anything is published for them
        await until(lambda: all_owned(db), 60, "every partition owned")
        await until(
            lambda: set(owners(db).values()) == set(workers), 30, "partitions spread over 3"
        )
        load.thread.start()
        await until(lambda: processed(db) > 300, 30, "the first checkpoints")

        # kill -9 one worker: its partitions move to the others
        dead = {p for p, o in owners(db).items() if o == "w1"}
        workers["w1"].kill9()
        killed_at = time.monotonic()
        await until(
            lambda: all(owners(db)[p] in ("w2", "w3") for p in dead), 20, "w1's partitions moved"
        )
        moved_s = time.monotonic() - killed_at
        assert moved_s < 15, f"handover took {moved_s:.1f} s"

        # pause w2 past its lease: w3 takes its partitions; w2 wakes, writes nothing, rejoins
        await until(lambda: "w2" in owners(db).values(), 20, "w2 to hold partitions")
        paused = {p for p, o in owners(db).items() if o == "w2"}
        before = epochs(db)
        workers["w2"].signal(signal.SIGSTOP)
        await until(
            lambda: all(owners(db)[p] == "w3" for p in paused), 30, "w2's partitions taken over"
        )
        assert all(epochs(db)[p] > before[p] for p in paused), "a takeover moves the epoch"
        workers["w2"].signal(signal.SIGCONT)
        await until(lambda: "lost to another worker" in workers["w2"].log()
                    or "its lease was taken over" in workers["w2"].log(), 30,
                    "w2 to notice it was replaced")  # fmt: skip
        workers["w1"].start()  # a restarted worker rejoins too
        await until(lambda: set(owners(db).values()) == set(workers), 60, "all three holding again")
        await until(lambda: processed(db) > load.published() // 2 + 300, 30, "load after it all")
        shown = json.loads(
            subprocess.run(
                [sys.executable, "-m", "gridalarm", "cloud", "partitions", "--config",
                 str(tmp_path / "cloud.yaml"), "--json"],
                check=True, capture_output=True, timeout=60,
            ).stdout
        )  # fmt: skip
        assert {w for w, _ in shown["workers"]} == set(workers)
        assert [p["partition"] for p in shown["partitions"]] == list(range(PARTITIONS))
        assert sum(p["gateways"] for p in shown["partitions"]) == len(GATEWAYS)
        assert sum(p["handovers"] for p in shown["partitions"]) >= PARTITIONS + len(dead)
        held = {p["partition"]: p["owner"] for p in shown["partitions"]}
        for name, w in workers.items():  # each one's metrics agree with the lease table
            mine = {p for p, o in held.items() if o == name}
            await until(lambda w=w, mine=mine: w.owned() == mine, 10, f"{name}'s metrics")  # type: ignore[misc]
    finally:
        load.stop.set()
        if load.thread.is_alive():
            load.thread.join(30)
    try:
        total = load.published()
        await until(lambda: processed(db) >= total, 60, f"all {total} messages processed")
    finally:
        codes = {name: w.stop() for name, w in workers.items()}
    logs = {name: w.log()[-3000:] for name, w in workers.items()}
    assert codes == dict.fromkeys(workers, 0), logs
    assert processed(db) == total, "every message processed exactly once"
    trackers = seen(db)
    for gw, last in load.seqs.items():
        tracker = trackers[gw]
        assert not tracker.gaps(gw) and not tracker.lost(gw), f"{gw}: a sequence was missed"
        assert tracker.snapshot()[gw]["w"] == last, f"{gw}: every seq up to {last} seen"
    with db.connect() as conn:
        raised = conn.execute(sa.select(alarms.c.key, alarms.c.raised_ts)).all()
    db.dispose()
    assert len(raised) == len(set(raised)), "an alarm was raised twice"
    assert len(raised) == load.expected_raises(), "every alarm raised once"
    assert {partition_of(gw, PARTITIONS) for gw in GATEWAYS} <= set(range(PARTITIONS))


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsCluster]:
    if shutil.which("nats-server") is None and not Path("/usr/sbin/nats-server").exists():
        need_service("nats-server (apt-get install nats-server)")
    (tmp_path / "nats").mkdir()
    with NatsCluster(tmp_path / "nats") as c:
        yield c


async def test_workers_and_gateways_move_to_another_node_when_theirs_dies(
    nats: NatsCluster, pg_url: str, tmp_path: Path
) -> None:
    # a database of its own: the module's other test left partitions and counts behind
    with postgres_server() as url:
        await _nats_node_death(nats, url, tmp_path)


async def _nats_node_death(nats: NatsCluster, pg_url: str, tmp_path: Path) -> None:
    urls = [f"mqtt://127.0.0.1:{port}" for port in nats.mqtt_ports]
    write_cluster(tmp_path, urls, pg_url, protocol="3.1.1")  # NATS speaks MQTT 3.1.1
    db = open_database(pg_url)
    workers = {name: Worker(tmp_path, name) for name in ("w1", "w2")}
    load = Load(*nats.mqtt_ports)
    try:
        for w in workers.values():
            w.start()
        await until(lambda: all_owned(db), 60, "every partition owned")
        await until(lambda: set(owners(db).values()) == set(workers), 30, "spread over 2")
        # a NATS session's subscriptions take about a second each to be in place
        await until(lambda: subscribed(workers) >= PARTITIONS, 60, "every partition subscribed")
        load.thread.start()
        await until(lambda: processed(db) > 300, 60, "the first checkpoints")
        nats.kill(0)  # the node everyone is connected to
        at = processed(db)
        await until(lambda: load.reconnects > 0, 30, "the load to move to another node")
        await until(lambda: processed(db) > at + 1000, 90, "processing to go on after the death")
        for w in workers.values():
            assert w.proc is not None and w.proc.poll() is None, w.log()[-3000:]
    finally:
        load.stop.set()
        if load.thread.is_alive():
            load.thread.join(30)
    try:
        total = load.published()
        await until(
            lambda: processed(db) >= total, 90, f"all {total} messages processed",
            report=lambda: missing(db, load),
        )  # fmt: skip
    finally:
        codes = {name: w.stop() for name, w in workers.items()}
    assert codes == dict.fromkeys(workers, 0), {n: w.log()[-3000:] for n, w in workers.items()}
    assert processed(db) == total, "every message processed exactly once"
    trackers = seen(db)
    for gw, last in load.seqs.items():
        assert trackers[gw].snapshot()[gw]["w"] == last, f"{gw}: every seq up to {last} seen"
        assert not trackers[gw].gaps(gw), f"{gw}: a sequence was missed"
    with db.connect() as conn:
        raised = conn.execute(sa.select(alarms.c.key, alarms.c.raised_ts)).all()
    db.dispose()
    assert len(raised) == len(set(raised)) == load.expected_raises(), "every alarm raised once"
