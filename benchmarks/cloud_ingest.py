"""Live ingest Mosquitto → cloud → SQLite sink, counted in readings, against a bare paho baseline.

Run by hand:  python benchmarks/cloud_ingest.py [--messages 100000] [--values 5] [--rounds 3]

Targets: >= 20,000 readings/s sustained; the cloud's message rate >= 50% of what a
bare paho subscriber drains from the same broker in the same run; p99 arrival→decision <= 50 ms.

Each round:
1. baseline: a publisher pre-loads N data messages (QoS 1) into a persistent session of a bare
   paho subscriber that is offline, then the subscriber connects and drains; its drain rate is
   the broker-bound ceiling on this machine.
2. cloud: the same N messages are pre-loaded for the cloud's persistent session while it is
   stopped; then the cloud worker starts in this process (`cloud_worker`, as `gridalarm cloud
   run` runs it) and drains them. Rate = readings the ingest counted / time from the first to
   the last.
3. live: a separate publisher process offers paced messages (default 20,000 readings/s). The
   latency arrival → rule decision is taken from every value the ingest observes on its
   `decision` histogram: the benchmark swaps in a recorder that keeps each raw value and
   forwards it to the real histogram (instrumentation only; the worker behaves as ever). p50,
   p99 and max are exact order statistics of those values, not histogram bucket bounds. The
   ingest observes one message in SAMPLE_EVERY and every one that changed an alarm.
Pre-loading makes both sides drain a backlog, which measures sustained ingest, not the
publisher's speed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cloud.config import CloudConfig, resolve
from cloud.ingest.checkpoint import read_checkpoint
from cloud.ingest.pipeline import SAMPLE_EVERY, Ingest
from cloud.worker import cloud_worker
from gridalarm.brokers import mosquitto
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


def end_session(port: int, client_id: str) -> None:
    """Drop a persistent session, so later rounds' messages are not queued for it too."""
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=True
    )
    c.connect("127.0.0.1", port)
    c.disconnect()


@dataclass(frozen=True)
class Span:
    """One drain, from the first message counted to the last: wall and process CPU seconds."""

    start: float
    end: float
    cpu_s: float
    before: int = 0  # counted already when the clock started (handled before the first look)

    @property
    def seconds(self) -> float:
        return self.end - self.start


def drain_session(port: int, client_id: str, messages: int, timeout_s: float = 300) -> Span:
    """Connect a bare paho subscriber to its persistent session and count *messages*."""
    got = [0]
    done = threading.Event()
    marks: list[tuple[float, float]] = []

    def on_msg(*_a: object) -> None:
        got[0] += 1
        if got[0] == 1:
            marks.append((time.perf_counter(), time.process_time()))
        if got[0] >= messages:
            marks.append((time.perf_counter(), time.process_time()))
            done.set()

    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        clean_session=False,
    )
    c.on_message = on_msg
    c.connect("127.0.0.1", port)
    c.loop_start()
    finished = done.wait(timeout_s)
    c.disconnect()
    c.loop_stop()
    if not finished:
        raise SystemExit(f"the paho subscriber got {got[0]} of {messages} in {timeout_s} s")
    (t0, c0), (t1, c1) = marks
    return Span(t0, t1, c1 - c0)


def baseline_round(port: int, items: list[tuple[str, bytes]]) -> Span:
    cid = f"bench-base-{time.monotonic_ns()}"
    subscribe_session(port, cid)
    publish_all(port, items)
    span = drain_session(port, cid, len(items))
    end_session(port, cid)
    return span


class RawHistogram:
    """Stands in for the worker's `decision` Histogram: keeps every observed value and forwards
    it to the real one, so /metrics and the worker see what they always see."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.values: list[float] = []

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        self.values.append(amount)
        self.real.observe(amount, exemplar)


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank p-th percentile: a value that was measured, no interpolation."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Latency:
    """Arrival → rule decision over one live load, from the raw values (seconds)."""

    count: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Latency:
        if not values:
            raise SystemExit("the ingest observed no decision during the live load")
        return cls(len(values), percentile(values, 50), percentile(values, 99), max(values))

    def __str__(self) -> str:
        return (
            f"p50 {self.p50 * 1000:.1f} ms, p99 {self.p99 * 1000:.1f} ms, "
            f"max {self.max * 1000:.1f} ms over {self.count:,} decisions"
        )


async def wait_readings(ingest: Ingest, db: Engine, readings: int, timeout_s: float = 600) -> Span:
    """Wait until the ingest counted *readings* and the checkpoint that covers them is
    committed (durable work, not work in hand); the span runs from the first time it counted
    any, and ``before`` says how many it had counted then (not to be credited to the span)."""
    start: tuple[float, float] | None = None
    before = 0
    deadline = time.monotonic() + timeout_s
    while (got := ingest.counts.get("readings", 0)) < readings:
        if start is None and got > 0:
            start, before = (time.perf_counter(), time.process_time()), got
        if time.monotonic() > deadline:
            raise SystemExit(f"the cloud counted {got} of {readings} readings in {timeout_s} s")
        await asyncio.sleep(0.005)  # reading a counter the ingest task updates
    while (read_checkpoint(db, "counts") or {}).get("readings", 0) < readings:
        if time.monotonic() > deadline:
            raise SystemExit(f"the checkpoint of {readings} readings not committed in time")
        await asyncio.sleep(0.005)  # one row of the cloud's own database, until committed
    end = time.perf_counter(), time.process_time()
    start = start or end
    return Span(start[0], end[0], end[1] - start[1], before)


def prepare_cloud(broker_url: str, port: int, workdir: Path) -> CloudConfig:
    """The cloud's config (files in *workdir*) with its persistent session already created."""
    (workdir / "devices.csv").write_text(write_devices_csv(devices()))
    cid = f"bench-cloud-{time.monotonic_ns()}"
    sink = os.environ.get("BENCH_SINK", "sqlite")
    config = {
        "mqtt": {"url": broker_url, "client_id": cid, "protocol": "3.1.1"},
        "database_url": "sqlite:///cloud.sqlite",
        "devices_csv": "devices.csv",
        "sink": {"kind": sink, **({"path": "readings.sqlite"} if sink == "sqlite" else {})},
        "metrics_listen": None,
    }
    subscribe_session(port, cid)
    return resolve(CloudConfig.model_validate(config), workdir)


def publish_live(port: int, items: list[tuple[str, bytes]], rate: float, out: Any) -> None:
    """In a child process (its own interpreter: no GIL shared with the cloud): paced publish."""
    out.put(publish_all(port, items, rate=rate))


@dataclass(frozen=True)
class Round:
    readings_per_s: float
    msgs_per_s: float
    cpu_us_per_msg: float  # the whole process's CPU time over the drain, per message drained
    offered_msgs_per_s: float
    latency: Latency


async def cloud_round(
    broker_url: str,
    port: int,
    items: list[tuple[str, bytes]],
    live: list[tuple[str, bytes]],
    live_rate: float,
    workdir: Path,
    values: int,
) -> Round:
    """Backlog drain rate, then the raw decision latencies under a paced live load."""
    config = prepare_cloud(broker_url, port, workdir)
    publish_all(port, items)  # the backlog waits in the cloud's session
    spawn = multiprocessing.get_context("spawn")
    offered = spawn.Queue()
    async with cloud_worker(config) as cloud:
        assert cloud.ingest is not None, "this worker runs no ingest"
        readings = len(items) * values
        backlog = await wait_readings(cloud.ingest, cloud.db, readings)
        raw = RawHistogram(cloud.metrics.decision)
        cloud.metrics.decision = raw  # type: ignore[assignment]  # the recorder forwards
        publisher = spawn.Process(
            target=publish_live, args=(port, live, live_rate, offered), name="bench.live"
        )
        publisher.start()
        try:
            await wait_readings(cloud.ingest, cloud.db, readings + len(live) * values)
            offered_rate = await asyncio.to_thread(offered.get, True, 120)
        finally:
            await asyncio.to_thread(publisher.join, 60)
    end_session(port, config.mqtt.client_id)
    drained = readings - backlog.before  # what was handled inside the span
    rate = drained / backlog.seconds
    cpu_us = backlog.cpu_s / (drained / values) * 1e6
    return Round(rate, rate / values, cpu_us, offered_rate, Latency.of(raw.values))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000, help="backlog messages per round")
    ap.add_argument("--values", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--live-readings-per-s", type=float, default=20_000)
    ap.add_argument("--live-seconds", type=float, default=15)
    args = ap.parse_args()
    items = payloads(args.messages, args.values)
    live_rate = args.live_readings_per_s / args.values
    live = payloads(int(live_rate * args.live_seconds), args.values, first_seq=args.messages)
    rounds: list[Round] = []
    bases: list[float] = []
    base_cpu: list[float] = []
    with tempfile.TemporaryDirectory() as d, mosquitto(Path(d) / "broker") as broker:
        for r in range(args.rounds):
            span = baseline_round(broker.port, items)
            drained = len(items) - span.before
            bases.append(drained / span.seconds)
            base_cpu.append(span.cpu_s / drained * 1e6)
            wd = Path(d) / f"r{r}"
            wd.mkdir()
            rnd = asyncio.run(
                cloud_round(broker.url, broker.port, items, live, live_rate, wd, args.values)
            )
            rounds.append(rnd)
            print(
                f"round {r + 1}: backlog drain {rnd.readings_per_s:,.0f} readings/s "
                f"({rnd.msgs_per_s:,.0f} msg/s, {rnd.cpu_us_per_msg:.1f} us CPU/msg); bare paho "
                f"subscriber {bases[-1]:,.0f} msg/s ({base_cpu[-1]:.1f} us CPU/msg); "
                f"live load {rnd.offered_msgs_per_s * args.values:,.0f} readings/s -> "
                f"arrival->decision {rnd.latency}"
            )
    mr = statistics.median(r.readings_per_s for r in rounds)
    mm = statistics.median(r.msgs_per_s for r in rounds)
    mb = statistics.median(bases)
    p50 = statistics.median(r.latency.p50 for r in rounds)
    p99 = statistics.median(r.latency.p99 for r in rounds)
    worst = statistics.median(r.latency.max for r in rounds)
    offered = statistics.median(r.offered_msgs_per_s * args.values for r in rounds)
    cpu = statistics.median(r.cpu_us_per_msg for r in rounds)
    cpu_base = statistics.median(base_cpu)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"cloud_ingest: median {mr:,.0f} readings/s sustained (target >= 20,000); {mm:,.0f} msg/s = "
        f"{mm / mb:.0%} of a bare paho subscriber's {mb:,.0f} msg/s (target >= 85%); live "
        f"arrival->decision median over rounds: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
        f"(target <= 50 ms), max {worst * 1000:.1f} ms at {offered:,.0f} readings/s offered "
        f"(exact, from raw values; the ingest observes 1 message in {SAMPLE_EVERY} and every "
        f"transition); {args.messages:,} messages x {args.values} values, {args.rounds} rounds"
    )
    print(
        f"CPU per message (process CPU over the drain / messages): ours {cpu:.1f} us (target <= "
        f"45), bare paho {cpu_base:.1f} us, ratio {cpu / cpu_base:.2f}; peak RSS of this process "
        f"(the worker runs in it, beside the payloads) {peak_mb:,.0f} MB"
    )


if __name__ == "__main__":
    main()
