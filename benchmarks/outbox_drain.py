"""Outbox drain rate after an outage (target >= 5,000 msg/s), against a bare paho baseline.

Run by hand:  python benchmarks/outbox_drain.py [--messages 50000] [--rounds 3]

Each round: fill a fresh outbox with N data messages while no broker connection exists (an
outage), then start the gateway's uplink + forwarder against a real Mosquitto and time until
the outbox is empty and a subscriber has received all N. The baseline in the same run: a bare
paho client publishing the same N payloads at QoS1 with the same in-flight window, from memory.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.config import MqttConfig
from edge.emitter import Emitter, drop_record
from edge.forwarder import Forwarder
from edge.outbox import Outbox
from edge.uplink import LastWill, Uplink
from gridalarm.brokers import mosquitto
from wire import Quality

WINDOW = 1000
VALUES = {"obscuration_pct_per_m": 0.12, "temperature_c": 23.4, "battery_mv": 2987, "alarm": False}


class Counter:
    def __init__(self, port: int, topic: str, expected: int) -> None:
        self.n = 0
        self.done = threading.Event()
        self.expected = expected
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{time.monotonic_ns()}"
        )
        self.c.on_message = self._on
        ready = threading.Event()
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(topic, qos=1)
        self.c.loop_start()
        ready.wait(5)

    def _on(self, *_a: object) -> None:
        self.n += 1
        if self.n >= self.expected:
            self.done.set()

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


async def drain_round(url: str, port: int, n: int, tmp: Path) -> float:
    outbox = Outbox(
        tmp / f"o-{time.monotonic_ns()}.sqlite",
        max_messages=10 * n,
        drop_record=lambda s, r: drop_record("gw-b", s, r),
    )
    appended = asyncio.Event()
    emitter = Emitter("gw-b", outbox, appended)
    for i in range(n):
        emitter.data(f"smk-{i % 500:04d}", time.time(), Quality.GOOD, VALUES)
    await emitter.flush()
    assert outbox.depth == n
    sub = Counter(port, "ga/v1/gw-b/#", n)
    uplink = Uplink(
        MqttConfig(url=url, max_inflight=WINDOW),
        f"bench-{time.monotonic_ns()}",
        will=LastWill("ga/v1/gw-b/status", b"offline"),
        on_connect=lambda: None,
        subscriptions=[],
    )
    fwd = Forwarder(outbox, uplink, WINDOW)
    tasks = [
        asyncio.create_task(uplink.run()),
        asyncio.create_task(fwd.run()),
        asyncio.create_task(fwd.run_acks()),
    ]
    await uplink.connected.wait()
    t0 = time.perf_counter()
    while outbox.depth:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - t0
    await asyncio.to_thread(sub.done.wait, 30)
    got = sub.n
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await uplink.close(None)
    sub.close()
    outbox.close()
    if got < n:
        raise SystemExit(f"subscriber got {got} of {n}: lost messages")
    return n / elapsed


def baseline_round(port: int, n: int) -> float:
    payload = (
        b'{"t":"data","gw":"gw-b","dev":"smk-0001","seq":1,"ts":1.0,"q":"good","values":{}}'
        + b" " * 60
    )
    sub = Counter(port, "bench/base/#", n)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{time.monotonic_ns()}")
    sem = threading.Semaphore(WINDOW)
    acked = threading.Event()
    count = [0]

    def on_pub(*_a: object) -> None:
        sem.release()
        count[0] += 1
        if count[0] >= n:
            acked.set()

    c.on_publish = on_pub
    c.max_inflight_messages_set(WINDOW)
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = time.perf_counter()
    for _ in range(n):
        sem.acquire()
        c.publish("bench/base/x", payload, qos=1)
    acked.wait(60)
    elapsed = time.perf_counter() - t0
    sub.done.wait(30)
    c.disconnect()
    c.loop_stop()
    sub.close()
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d, mosquitto(Path(d) / "broker") as broker:
        drains, bases = [], []
        for r in range(args.rounds):
            bases.append(baseline_round(broker.port, args.messages))
            drains.append(asyncio.run(drain_round(broker.url, broker.port, args.messages, Path(d))))
            print(
                f"round {r + 1}: outbox drain {drains[-1]:,.0f} msg/s, bare paho {bases[-1]:,.0f} msg/s"
            )
        md, mb = statistics.median(drains), statistics.median(bases)
        print(
            f"outbox_drain: median {md:,.0f} msg/s over {args.rounds} rounds of {args.messages:,} "
            f"(target >= 5,000); bare paho QoS1 baseline {mb:,.0f} msg/s; ratio {md / mb:.2f}"
        )


if __name__ == "__main__":
    main()
