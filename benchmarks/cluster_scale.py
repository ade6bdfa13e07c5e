"""Scale-out on this machine: messages/s and CPU per message with 1, 2 and 3 cloud workers,
and how long a killed worker's partitions take to move.

Real processes: PostgreSQL, Mosquitto, `gridalarm cloud run` workers in the scaled mode
(``cluster:``), a city-sized registry (200 gateways x 100 devices = 20,000 by default).

1. Throughput, per worker count: the workers start and subscribe, stop cleanly (their
   partitions' persistent sessions stay on the broker), a backlog of --messages readings is
   published, the workers start again and drain it. Rate = messages / drain time, counted by
   the partitions' checkpoints; CPU = the workers' user+system time over the drain. The
   ratio is against one worker measured in the same run.
2. Handover (--kills N, with 3 workers and a steady load): kill -9 a worker that holds
   partitions; time until every one of them is held by another worker *and* subscribed
   there again (its session resumed); restart the victim and wait for the balance.
3. Field -> SMS (--sms N alarms, one every --sms-every s) with 3 workers and dispatch to a
   Twilio stand-in, one worker killed -9 a third of the way in: p50/p99 before, within 20 s
   of the kill (its partitions' alarms wait for the handover) and after.

    python benchmarks/cluster_scale.py                       # full: 100,000 msgs, 10 kills
    python benchmarks/cluster_scale.py --messages 20000 --kills 3 --gateways 50
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cloud.database import open_database
from cloud.lifecycle.rule_alarms import alarms
from cloud.lifecycle.tables import outbox
from gridalarm.brokers import Mosquitto, mosquitto
from rigs.cluster import (
    Load,
    Worker,
    add_dispatch,
    all_owned,
    district,
    owners,
    processed,
    write_cluster,
)
from rigs.standins import TwilioStandin
from rules import DeviceInfo
from tests.postgres import postgres_server
from wire import DataMessage, encode
from wire.topics import data_topic

TICK = os.sysconf("SC_CLK_TCK")


def wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s} s")
        time.sleep(0.1)


def cpu_s(workers: list[Worker]) -> float:
    """User + system CPU seconds the workers' processes used so far."""
    total = 0
    for w in workers:
        assert w.proc is not None
        fields = Path(f"/proc/{w.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def subscribed_since(workers: list[Worker], offsets: dict[str, int]) -> set[int]:
    found: set[int] = set()
    for w in workers:
        text = w.log()[offsets.get(w.name, 0) :]
        found |= {int(p) for p in re.findall(r"gridalarm-cloud-p(\d+): subscribed", text)}
    return found


def moved(db: sa.Engine, held: set[int], others: list[Worker], offsets: dict[str, int]) -> bool:
    """Every partition in *held* is owned by one of *others* and subscribed there again."""
    names = {w.name for w in others}
    return all(owners(db)[p] in names for p in held) and held <= subscribed_since(others, offsets)


def backlog(port: int, devices: list[DeviceInfo], count: int) -> None:
    """*count* readings, numbered per gateway, published as fast as the broker takes them."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-backlog")
    client.max_inflight_messages_set(1000)
    done = threading.Semaphore(0)
    client.on_publish = lambda *_a: done.release()
    client.connect("127.0.0.1", port)
    client.loop_start()
    seqs: dict[str, int] = {}
    for n in range(count):
        dev = devices[n % len(devices)]
        seq = seqs[dev.gateway] = seqs.get(dev.gateway, 0) + 1
        msg = DataMessage(gw=dev.gateway, dev=dev.device, seq=seq, ts=time.time(),
                          values={"level_mm": 50.0 + n % 7})  # fmt: skip
        client.publish(data_topic(dev.gateway, dev.device), encode(msg), qos=1)
        if n >= 2000:
            done.acquire(timeout=30)  # keep at most ~2,000 unacknowledged
    for _ in range(min(count, 2000)):
        done.acquire(timeout=30)
    client.disconnect()
    client.loop_stop()


def start_all(workers: list[Worker], db: sa.Engine, partitions: int) -> None:
    offsets = {w.name: len(w.log()) for w in workers}
    for w in workers:
        w.start()
    wait(lambda: all_owned(db, partitions), 120, "every partition owned")
    wait(lambda: set(owners(db).values()) == {w.name for w in workers}, 120, "spread")
    wait(lambda: len(subscribed_since(workers, offsets)) >= partitions, 120, "subscribed")


def throughput(k: int, args: argparse.Namespace, devices: list[DeviceInfo]) -> tuple[float, float]:
    """(messages/s, CPU ms per message) of *k* workers draining a backlog."""
    with tempfile.TemporaryDirectory(prefix="ga-scale-") as tmp, postgres_server() as url:
        folder = Path(tmp)
        with mosquitto(folder / "broker") as broker:
            cluster = {"partitions": args.partitions, "lease_s": 10.0}
            write_cluster(folder, [broker.url], url, devices, cluster)
            db = open_database(url)
            workers = [Worker(folder, f"w{i + 1}") for i in range(k)]
            start_all(workers, db, args.partitions)
            for w in workers:
                w.stop()
            backlog(broker.port, devices, args.messages)
            for w in workers:
                w.start()
            wait(lambda: processed(db) > 0, 120, "draining to start")
            t0, c0, p0 = time.monotonic(), cpu_s(workers), processed(db)
            wait(lambda: processed(db) >= args.messages, 600, "the backlog drained")
            t1, c1 = time.monotonic(), cpu_s(workers)
            for w in workers:
                w.stop()
            db.dispose()
    drained = args.messages - p0
    return drained / (t1 - t0), 1000 * (c1 - c0) / drained


def handovers(args: argparse.Namespace, devices: list[DeviceInfo]) -> list[float]:
    """Seconds from kill -9 of a worker until its partitions are held and subscribed again."""
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ga-hand-") as tmp, postgres_server() as url:
        folder = Path(tmp)
        with mosquitto(folder / "broker") as broker:
            times = _handovers(folder, broker, url, args, devices)
    return times


def _handovers(
    folder: Path, broker: Mosquitto, url: str, args: argparse.Namespace, devices: list[DeviceInfo]
) -> list[float]:
    cluster = {"partitions": args.partitions, "lease_s": args.lease}
    write_cluster(folder, [broker.url], url, devices, cluster)
    db = open_database(url)
    workers = [Worker(folder, f"w{i + 1}") for i in range(3)]
    start_all(workers, db, args.partitions)
    load = Load([broker.port], devices[: 16 * 4], pause_s=0.005)
    load.thread.start()
    times = []
    try:
        for n in range(args.kills):
            victim = workers[n % 3]
            held = {p for p, o in owners(db).items() if o == victim.name}
            others = [w for w in workers if w is not victim]
            offsets = {w.name: len(w.log()) for w in others}
            victim.kill9()
            t0 = time.monotonic()
            check = functools.partial(moved, db, held, others, offsets)
            wait(check, 120, "the partitions to move")
            times.append(time.monotonic() - t0)
            print(f"  kill {n + 1}: {len(held)} partitions moved in {times[-1]:.1f} s", flush=True)
            offsets = {w.name: len(w.log()) for w in workers}
            victim.start()
            wait(lambda: set(owners(db).values()) == {w.name for w in workers}, 120, "rebalance")
            wait(lambda: all_owned(db, args.partitions), 120, "every partition owned")
    finally:
        load.close()
        for w in workers:
            w.stop()
        db.dispose()
    return times


def sms_latency(args: argparse.Namespace, devices: list[DeviceInfo]) -> None:
    """Field event → SMS at the provider, steady and during a handover (kill -9 mid-run)."""
    with (
        tempfile.TemporaryDirectory(prefix="ga-sms-") as tmp, postgres_server() as url,
        TwilioStandin() as twilio,
    ):  # fmt: skip
        folder = Path(tmp)
        with mosquitto(folder / "broker") as broker:
            cluster = {"partitions": args.partitions, "lease_s": args.lease}
            write_cluster(folder, [broker.url], url, devices, cluster)
            env = add_dispatch(folder, devices, twilio)
            db = open_database(url)
            workers = [Worker(folder, f"w{i + 1}", env) for i in range(3)]
            start_all(workers, db, args.partitions)
            try:
                _sms_latency(args, devices, broker, db, workers, twilio)
            finally:
                for w in workers:
                    w.stop()
                db.dispose()


def _sms_latency(
    args: argparse.Namespace,
    devices: list[DeviceInfo],
    broker: Mosquitto,
    db: sa.Engine,
    workers: list[Worker],
    twilio: TwilioStandin,
) -> None:
    # the load on the first 16 gateways; one alarm on each device of the others, once
    background = [d for d in devices if d.gateway < devices[16 * args.per_gateway].gateway]
    others: dict[str, list[DeviceInfo]] = {}
    for d in devices:
        if d not in background:
            others.setdefault(d.gateway, []).append(d)
    # spread over every other gateway (so over the partitions), one device of each in turn
    spread = [others[g][k] for k in range(args.per_gateway) for g in sorted(others)]
    triggers = spread[: args.sms]
    load = Load([broker.port], background, pause_s=0.005)
    load.thread.start()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-alarms")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    seqs: dict[str, int] = {}
    sent: dict[str, tuple[float, float]] = {}  # device -> (monotonic, wall) of its alarm
    kill_at = 0.0
    try:
        for n, dev in enumerate(triggers):
            if n == len(triggers) // 3:
                held = [p for p, o in owners(db).items() if o == workers[0].name]
                print(f"  kill -9 {workers[0].name} ({len(held)} partitions)", flush=True)
                workers[0].kill9()
                kill_at = time.monotonic()
            seq = seqs[dev.gateway] = seqs.get(dev.gateway, 0) + 1
            wall = time.time()
            msg = DataMessage(gw=dev.gateway, dev=dev.device, seq=seq, ts=wall,
                              values={"level_mm": 400.0})  # fmt: skip
            client.publish(data_topic(dev.gateway, dev.device), encode(msg), qos=1)
            sent[dev.device] = (time.monotonic(), wall)
            time.sleep(args.sms_every)  # pacing of the incidents, not a wait
        wait(lambda: first_sms(db, twilio).keys() >= sent.keys(), 120, "an SMS for each alarm")
    finally:
        load.close()
        client.loop_stop()
        client.disconnect()
    arrived = first_sms(db, twilio)
    steady = [arrived[d] - t for d, (t, _) in sent.items() if t < kill_at]
    during = [arrived[d] - t for d, (t, _) in sent.items() if kill_at <= t < kill_at + 20]
    after = [arrived[d] - t for d, (t, _) in sent.items() if t >= kill_at + 20]
    for name, xs in (("steady", steady), ("within 20 s of the kill", during), ("after", after)):
        if xs:
            print(f"  field -> SMS {name}: n={len(xs)} p50 {1000 * pct(xs, 50):.0f} ms, "
                  f"p99 {1000 * pct(xs, 99):.0f} ms, max {1000 * max(xs):.0f} ms", flush=True)  # fmt: skip


def first_sms(db: sa.Engine, twilio: TwilioStandin) -> dict[str, float]:
    """Each alarm's device and when its first SMS reached the provider (monotonic)."""
    at: dict[str, float] = {}
    for req in list(twilio.requests):
        token = req.headers.get("i-twilio-idempotency-token")
        if token is not None:
            at.setdefault(token, req.received_at)
    if not at:
        return {}
    with db.connect() as conn:
        # a summary carries several alarms: alarm_ids lists them all
        rows = conn.execute(
            sa.select(outbox.c.id, outbox.c.alarm_ids).where(outbox.c.id.in_(list(at)))
        ).all()
        device_of = dict(conn.execute(sa.select(alarms.c.id, alarms.c.device)).all())
    first: dict[str, float] = {}
    for mid, ids in rows:
        for alarm_id in json.loads(ids):
            device = device_of.get(alarm_id)
            if device is not None:
                first[device] = min(first.get(device, at[mid]), at[mid])
    return first


def pct(xs: list[float], p: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateways", type=int, default=200)
    parser.add_argument("--per-gateway", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--lease", type=float, default=10.0, help="lease_s of the handovers")
    parser.add_argument("--sms", type=int, default=90, help="alarms of the field -> SMS phase")
    parser.add_argument("--sms-every", type=float, default=0.5, help="seconds between them")
    args = parser.parse_args()
    devices = district(args.gateways, args.per_gateway)
    print(
        f"{len(devices)} devices on {args.gateways} gateways, {args.partitions} partitions, "
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    results = {}
    for k in args.workers if args.messages else []:
        rate, cpu = throughput(k, args, devices)
        results[k] = (rate, cpu)
        print(f"{k} worker(s): {rate:,.0f} msg/s, {cpu:.3f} CPU ms/msg "
              f"(= {1000 / cpu:,.0f} msg/s per core)", flush=True)  # fmt: skip
    if results and min(results) in results:
        base = results[min(results)][0]
        for k, (rate, _) in sorted(results.items()):
            print(f"  ratio {k} vs {min(results)} worker(s): {rate / base:.2f}")
    if args.kills:
        times = handovers(args, devices)
        print(
            f"handover after kill -9 (lease {args.lease:.0f} s), {len(times)} kills: "
            f"p50 {statistics.median(times):.1f} s, max {max(times):.1f} s",
            flush=True,
        )
    if args.sms:
        print("field -> SMS with 3 workers, one killed a third of the way in:", flush=True)
        sms_latency(args, devices)


if __name__ == "__main__":
    main()
