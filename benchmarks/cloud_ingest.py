"""Live ingest Mosquitto → cloud → SQLite sink, counted in readings, against a bare paho baseline.

Run by hand:  python benchmarks/cloud_ingest.py [--messages 100000] [--values 5] [--rounds 3]

Targets (issue 3): >= 20,000 readings/s sustained; the cloud's message rate >= 50% of what a
bare paho subscriber drains from the same broker in the same run; p99 arrival→decision <= 50 ms.

Each round:
1. baseline: a publisher process pre-loads N data messages (QoS 1) into a persistent session
   of a bare paho subscriber that is offline, then the subscriber connects and drains; its
   drain rate is the broker-bound ceiling on this machine.
2. cloud: the same N messages are pre-loaded for the cloud's persistent session while it is
   stopped; then `gridalarm cloud run` starts and drains them. Rate = readings in the cloud's
   checkpointed counter / time from connect to the last checkpoint. p99 decision latency comes
   from the cloud's Prometheus histogram.
Pre-loading makes both sides drain a backlog, which measures sustained ingest, not the
publisher's speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gridalarm.brokers import free_port, mosquitto
from rules.devices import DeviceInfo
from rules.devices_csv import write_devices_csv
from wire import DataMessage, encode
from wire.topics import data_topic

GATEWAYS = 10
DEVICES_PER_GATEWAY = 100


def devices() -> list[DeviceInfo]:
    return [
        DeviceInfo(
            f"fl-{g:02d}-{d:03d}",
            f"gw-{g:02d}",
            "flood",
            f"grid-{g}",
            f"b-{g}-{d // 2}",
            "c-1",
            60.0,
        )
        for g in range(GATEWAYS)
        for d in range(DEVICES_PER_GATEWAY)
    ]


def payloads(n: int, values: int, first_seq: int = 0) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    seqs: dict[str, int] = {}
    devs = devices()
    t0 = time.time()
    for i in range(n):
        d = devs[i % len(devs)]
        seq = seqs[d.gateway] = seqs.get(d.gateway, first_seq) + 1
        vals: dict[str, float | int | bool] = {
            "level_mm": float(i % 100),
            "rain_mm_h": 1.5,
            "sensor_fault": False,
            "level_alarm": False,
            "level_alarm_point_mm": 300,
        }
        extra = {f"x{k}": float(k) for k in range(max(0, values - len(vals)))}
        msg = DataMessage(
            gw=d.gateway,
            dev=d.device,
            seq=seq,
            ts=t0 + i * 0.001,
            values=dict(list({**vals, **extra}.items())[:values]),
        )
        out.append((data_topic(d.gateway, d.device), encode(msg)))
    return out


def publish_all(port: int, items: list[tuple[str, bytes]], rate: float | None = None) -> float:
    """Publish at QoS 1 (window 1000), as fast as possible or paced at *rate* msg/s; return msg/s."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{time.monotonic_ns()}")
    sem = threading.Semaphore(1000)
    done = threading.Event()
    count = [0]

    def on_pub(*_a: object) -> None:
        sem.release()
        count[0] += 1
        if count[0] >= len(items):
            done.set()

    c.on_publish = on_pub
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = time.perf_counter()
    for i, (topic, payload) in enumerate(items):
        if rate is not None and i % 50 == 0:
            ahead = t0 + i / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)  # pacing the offered load, not waiting for a condition
        sem.acquire()
        c.publish(topic, payload, qos=1)
    done.wait(300)
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return len(items) / elapsed


def subscribe_session(port: int, client_id: str) -> None:
    """Create a persistent session subscribed to the data topics, then leave."""
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        clean_session=False,
    )
    ok = threading.Event()
    c.on_subscribe = lambda *a: ok.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe("ga/v1/+/dev/+/data", qos=1)
    ok.wait(10)
    c.disconnect()
    c.loop_stop()


def baseline_round(port: int, items: list[tuple[str, bytes]]) -> float:
    cid = f"bench-base-{time.monotonic_ns()}"
    subscribe_session(port, cid)
    publish_all(port, items)
    got = [0]
    done = threading.Event()
    t: list[float] = []

    def on_msg(*_a: object) -> None:
        got[0] += 1
        if got[0] == 1:
            t.append(time.perf_counter())
        if got[0] >= len(items):
            t.append(time.perf_counter())
            done.set()

    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311, clean_session=False
    )
    c.on_message = on_msg
    c.connect("127.0.0.1", port)
    c.loop_start()
    done.wait(300)
    c.disconnect()
    c.loop_stop()
    return len(items) / (t[1] - t[0])


def metric(port: int, name: str) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def p99_from_buckets(before: dict[str, float], after: dict[str, float]) -> float:
    """p99 upper bound of the observations made between two reads of a histogram."""
    pairs = sorted(
        (float(k.split('le="')[1].split('"')[0].replace("+Inf", "inf")), v - before.get(k, 0.0))
        for k, v in after.items()
        if "_bucket" in k
    )
    total = pairs[-1][1]
    for le, count in pairs:
        if count >= 0.99 * total:
            return le
    return float("inf")


def wait_readings(mport: int, readings: float) -> tuple[float, float]:
    """Wait until the cloud counted *readings*; return (first time it counted any, time done)."""
    start: float | None = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            got = metric(mport, "gridalarm_readings_total").get("gridalarm_readings_total", 0.0)
        except OSError:
            time.sleep(0.05)  # the endpoint is not up yet
            continue
        if start is None and got > 0:
            start = time.perf_counter()
        if got >= readings:
            return start or time.perf_counter(), time.perf_counter()
        time.sleep(0.05)
    raise SystemExit(f"the cloud did not count {readings} readings in time")


def prepare_cloud(broker_url: str, port: int, workdir: Path) -> tuple[list[str], int]:
    """Write the cloud's config and create its persistent session; return (command, metrics port)."""
    (workdir / "devices.csv").write_text(write_devices_csv(devices()))
    mport = free_port()
    cid = f"bench-cloud-{time.monotonic_ns()}"
    config = {
        "mqtt": {"url": broker_url, "client_id": cid, "protocol": "3.1.1"},
        "database_url": "sqlite:///cloud.sqlite",
        "devices_csv": "devices.csv",
        "sink": {
            "kind": os.environ.get("BENCH_SINK", "sqlite"),
            **(
                {"path": "readings.sqlite"}
                if os.environ.get("BENCH_SINK", "sqlite") == "sqlite"
                else {}
            ),
        },
        "metrics_listen": f"127.0.0.1:{mport}",
    }
    (workdir / "cloud.yaml").write_text(json.dumps(config))
    subscribe_session(port, cid)
    cmd = [
        sys.executable,
        "-m",
        "gridalarm",
        "cloud",
        "run",
        "--config",
        str(workdir / "cloud.yaml"),
        "--log-level",
        "WARNING",
    ]
    return cmd, mport


def cloud_round(
    broker_url: str,
    port: int,
    items: list[tuple[str, bytes]],
    live: list[tuple[str, bytes]],
    live_rate: float,
    workdir: Path,
    values: int,
) -> tuple[float, float, float, float]:
    """Backlog drain rate (readings/s, msg/s), then p99 decision latency under a paced live load."""
    cmd, mport = prepare_cloud(broker_url, port, workdir)
    publish_all(port, items)  # the backlog waits in the cloud's session
    proc = subprocess.Popen(cmd, env={**os.environ})
    try:
        readings = len(items) * values
        t0, t1 = wait_readings(mport, readings)
        rate = readings / (t1 - t0)
        before = metric(mport, "gridalarm_decision_seconds")
        offered = publish_all(port, live, rate=live_rate)
        wait_readings(mport, readings + len(live) * values)
        p99 = p99_from_buckets(before, metric(mport, "gridalarm_decision_seconds"))
    finally:
        proc.terminate()
        proc.wait(60)
    return rate, rate / values, p99, offered


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--values", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--live-readings-per-s", type=float, default=20_000)
    ap.add_argument("--live-seconds", type=float, default=15)
    args = ap.parse_args()
    items = payloads(args.messages, args.values)
    live_rate = args.live_readings_per_s / args.values
    live = payloads(int(live_rate * args.live_seconds), args.values, first_seq=args.messages)
    rates, msg_rates, p99s, offered, bases = [], [], [], [], []
    with tempfile.TemporaryDirectory() as d, mosquitto(Path(d) / "broker") as broker:
        for r in range(args.rounds):
            bases.append(baseline_round(broker.port, items))
            wd = Path(d) / f"r{r}"
            wd.mkdir()
            rate, msg_rate, p99, off = cloud_round(
                broker.url, broker.port, items, live, live_rate, wd, args.values
            )
            rates.append(rate)
            msg_rates.append(msg_rate)
            p99s.append(p99)
            offered.append(off * args.values)
            print(
                f"round {r + 1}: backlog drain {rate:,.0f} readings/s ({msg_rate:,.0f} msg/s); bare paho "
                f"subscriber {bases[-1]:,.0f} msg/s; live load {offered[-1]:,.0f} readings/s -> p99 decision "
                f"<= {p99 * 1000:.0f} ms"
            )
    mr, mm, mb = statistics.median(rates), statistics.median(msg_rates), statistics.median(bases)
    print(
        f"cloud_ingest: median {mr:,.0f} readings/s sustained (target >= 20,000); {mm:,.0f} msg/s = {mm / mb:.0%} "
        f"of a bare paho subscriber's {mb:,.0f} msg/s (target >= 50%); p99 arrival->decision <= "
        f"{statistics.median(p99s) * 1000:.0f} ms at {statistics.median(offered):,.0f} readings/s offered "
        f"(target <= 50 ms); {args.messages:,} messages x {args.values} values, {args.rounds} rounds"
    )


if __name__ == "__main__":
    main()
