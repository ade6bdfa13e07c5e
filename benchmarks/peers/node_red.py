"""The peer in the same run: our cloud worker against Node-RED 4 draining the same backlog.

Run by hand (never in CI; needs Node.js >= 18 and npm that can reach the registry):
    python benchmarks/peers/node_red.py [--messages 100000] [--values 5] [--rounds 3]

Four contenders, each a process of its own, each draining an identical backlog from its own
persistent session on one Mosquitto:
- paho: a bare paho subscriber that counts messages (the broker-bound ceiling);
- ours: the cloud worker (`cloud_worker`, SQLite sink, checkpoints, ack after commit);
- Node-RED: `flow.json` — JSON parse, dedup by (gateway, seq), device lookup, threshold with
  hysteresis on level_mm, transitions counted; state in memory, acknowledged on receipt;
- Node-RED + SQLite: the same flow also writing one row per reading through
  node-red-node-sqlite, 1,000 rows per transaction.
The backlog is published once per contender, just before it drains, into that contender's
session only (so no contender drains while other sessions' queues sit in the broker), with
event times fresh at publishing (so no old backlog trips silence alarms). Time runs from the
first message received to the last processed; CPU per message is the contender process's CPU
time over that span / messages; peak RSS is the process's high-water mark.

Node-RED and the SQLite node are installed with npm from `package.json` into a temporary
folder, then kept under ~/.cache/gridalarm-peers so later runs start at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/: cloud_ingest
sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))  # the repository

from cloud_ingest import (
    Span,
    devices,
    drain_session,
    end_session,
    payloads,
    prepare_cloud,
    publish_all,
    subscribe_session,
    wait_readings,
)

from cloud.config import CloudConfig
from cloud.worker import cloud_worker
from gridalarm.brokers import Mosquitto, free_port, mosquitto

HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "gridalarm-peers" / "node-red-4"
DONE_TOPIC = "bench/node-red/done"
SQLITE_BATCH_ROWS = 1_000
NODE_MAJOR_MIN = 18  # Node-RED 4's floor (Node-RED 5 needs 22)


@dataclass(frozen=True)
class Result:
    """One contender's drain."""

    messages: int
    seconds: float
    cpu_s: float
    peak_rss_mb: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.messages * 1e6

    def __str__(self) -> str:
        return (
            f"{self.rate:>8,.0f} msg/s  {self.cpu_us:5.1f} µs CPU/msg  "
            f"{self.peak_rss_mb:5.0f} MB peak RSS"
        )


def peak_rss_mb(pid: int | str = "self") -> float:
    """The kernel's VmHWM of the process. Not getrusage's ru_maxrss: that survives exec, so a
    child would report the runner's own peak from before it was spawned."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmHWM in /proc/{pid}/status")


def of_span(messages: int, span: Span) -> Result:
    return Result(messages, span.seconds, span.cpu_s, peak_rss_mb())


# --- installing Node-RED ---------------------------------------------------------------------


def install_node_red(timeout_s: float = 600) -> Path:
    """Node-RED's red.js, installed from package.json unless the cache already holds it."""
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        raise SystemExit("node and npm are needed (Node.js >= 18)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    if int(version.stdout.strip().lstrip("v").split(".")[0]) < NODE_MAJOR_MIN:
        raise SystemExit(f"Node-RED 4 needs Node.js >= {NODE_MAJOR_MIN}, found {version.stdout}")
    wanted = (HERE / "package.json").read_text()
    marker = CACHE / "package.json"
    red = CACHE / "node_modules" / "node-red" / "red.js"
    if marker.exists() and marker.read_text() == wanted and red.exists():
        return red
    print(f"installing Node-RED into {CACHE} (npm, once)", flush=True)
    shutil.rmtree(CACHE, ignore_errors=True)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ga-node-red-", dir=CACHE.parent) as tmp:
        (Path(tmp) / "package.json").write_text(wanted)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--omit=dev", "--loglevel=error"],
            cwd=tmp,
            check=True,
            timeout=timeout_s,
        )
        (Path(tmp) / "package.json").unlink()
        Path(tmp).rename(CACHE.with_name(CACHE.name + ".new"))
    CACHE.with_name(CACHE.name + ".new").rename(CACHE)
    marker.write_text(wanted)  # written last: a half-done install is redone next time
    return red


# --- contenders in their own processes -------------------------------------------------------


def _paho(port: int, client_id: str, messages: int) -> Result:
    return of_span(messages, drain_session(port, client_id, messages))


def _ours(config: CloudConfig, messages: int, values: int) -> Result:
    async def drain() -> Span:
        async with cloud_worker(config) as cloud:
            assert cloud.ingest is not None, "this worker runs no ingest"
            return await wait_readings(cloud.ingest, cloud.db, messages * values)

    span = asyncio.run(drain())
    # the clock starts at the first look that sees a count: credit only what came after it
    return of_span(messages - span.before // values, span)


def _child(target: Callable[..., Result], args: tuple[Any, ...], out: Any) -> None:
    try:
        out.put(target(*args))
    except BaseException as err:  # the parent reports it; the child only carries it over
        out.put(f"{type(err).__name__}: {err}")


def in_child(target: Callable[..., Result], *args: Any, timeout_s: float) -> Result:
    """Run *target* in a fresh interpreter (its own CPU time and RSS); stop it in any case."""
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    proc = spawn.Process(target=_child, args=(target, args, out), name=f"bench.{target.__name__}")
    proc.start()
    try:
        got = out.get(timeout=timeout_s)
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    if not isinstance(got, Result):
        raise SystemExit(f"{target.__name__}: {got}")
    return got


class DoneListener:
    """Subscribed to the flow's done topic before Node-RED starts; holds its one report."""

    def __init__(self, port: int) -> None:
        self.report: dict[str, Any] = {}
        self.done = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-done-{time.monotonic_ns()}"
        )
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(DONE_TOPIC, qos=1)
        if not subscribed.wait(10):
            raise SystemExit("the done listener could not subscribe")

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.report = json.loads(msg.payload)
        self.done.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def node_red_round(
    red: Path, port: int, items: list[tuple[str, bytes]], batch_rows: int, workdir: Path,
    timeout_s: float,
) -> tuple[Result, dict[str, Any]]:  # fmt: skip
    """Queue the backlog in Node-RED's session, start Node-RED, wait for the flow's report."""
    cid = f"bench-node-red-{time.monotonic_ns()}"
    workdir.mkdir()
    (workdir / "flows.json").write_text((HERE / "flow.json").read_text())
    (workdir / "devices.json").write_text(
        json.dumps({d.device: {"gateway": d.gateway, "type": d.type, "grid": d.grid}
                    for d in devices()})
    )  # fmt: skip
    env = {
        **os.environ,
        "BENCH_MQTT_PORT": str(port),
        "BENCH_CLIENT_ID": cid,
        "BENCH_MESSAGES": str(len(items)),
        "BENCH_BATCH_ROWS": str(batch_rows),
        "BENCH_SQLITE_PATH": str(workdir / "readings.sqlite"),
        "BENCH_DEVICES": str(workdir / "devices.json"),
        "BENCH_UI_PORT": str(free_port()),
    }
    subscribe_session(port, cid)
    publish_all(port, items)
    listener = DoneListener(port)
    log = (workdir / "node-red.log").open("wb")
    proc = subprocess.Popen(
        ["node", str(red), "--userDir", str(workdir), "--settings", str(HERE / "settings.js")],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        if not listener.done.wait(timeout_s):
            tail = (workdir / "node-red.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"Node-RED did not report within {timeout_s} s; its log:\n{tail}")
        rss_mb = peak_rss_mb(proc.pid)
    finally:
        stop(proc)
        log.close()
        listener.close()
        end_session(port, cid)
    r = listener.report
    return Result(r["messages"], r["seconds"], r["cpu_s"], rss_mb), r


def stored_rows(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        count: int = db.execute("SELECT count(*) FROM readings").fetchone()[0]
        return count


# --- the run ---------------------------------------------------------------------------------


CONTENDERS = ("paho", "ours", "Node-RED", "Node-RED+SQLite")


def one_round(
    red: Path, broker: Mosquitto, args: argparse.Namespace, workdir: Path
) -> dict[str, Result]:
    port, n, out = broker.port, args.messages, {}
    cid = f"bench-base-{time.monotonic_ns()}"
    subscribe_session(port, cid)
    publish_all(port, payloads(n, args.values))
    out["paho"] = in_child(_paho, port, cid, n, timeout_s=args.timeout_s)
    end_session(port, cid)

    config = prepare_cloud(broker.url, port, workdir / "ours")
    publish_all(port, payloads(n, args.values))
    out["ours"] = in_child(_ours, config, n, args.values, timeout_s=args.timeout_s)
    end_session(port, config.mqtt.client_id)

    for name, rows in (("Node-RED", 0), ("Node-RED+SQLite", SQLITE_BATCH_ROWS)):
        items = payloads(n, args.values)
        out[name], report = node_red_round(red, port, items, rows, workdir / name, args.timeout_s)
        if report["messages"] != n or report["duplicates"] or report["unknown"]:
            raise SystemExit(f"{name} did not handle the backlog as sent: {report}")
        if rows and (stored := stored_rows(workdir / name / "readings.sqlite")) != n:
            raise SystemExit(f"{name} stored {stored} rows of {n}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000, help="backlog messages per drain")
    ap.add_argument("--values", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout-s", type=float, default=300, help="limit for each drain")
    args = ap.parse_args()
    red = install_node_red()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at start", flush=True)
    rounds: list[dict[str, Result]] = []
    with tempfile.TemporaryDirectory(prefix="ga-peers-") as d, mosquitto(Path(d) / "broker") as b:
        for r in range(args.rounds):
            wd = Path(d) / f"r{r}"
            (wd / "ours").mkdir(parents=True)
            rounds.append(one_round(red, b, args, wd))
            for name in CONTENDERS:
                print(f"round {r + 1}  {name:<16} {rounds[-1][name]}", flush=True)
    med = {
        name: Result(
            args.messages,
            args.messages / statistics.median(x[name].rate for x in rounds),
            statistics.median(x[name].cpu_us for x in rounds) * args.messages / 1e6,
            statistics.median(x[name].peak_rss_mb for x in rounds),
        )
        for name in CONTENDERS
    }
    print(f"median over {args.rounds} rounds, {args.messages:,} messages x {args.values} values:")
    for name in CONTENDERS:
        print(f"  {name:<16} {med[name]}")
    print(
        "  (paho's RSS carries the cloud modules this runner imports: its child is spawned from it)"
    )
    ours = med["ours"].rate
    print(
        f"ours / Node-RED = {ours / med['Node-RED'].rate:.2f} (target >= 1.0); "
        f"ours / Node-RED+SQLite ({SQLITE_BATCH_ROWS:,} rows per transaction) = "
        f"{ours / med['Node-RED+SQLite'].rate:.2f} (target >= 1.5); "
        f"ours / bare paho = {ours / med['paho'].rate:.2f}"
    )
    cpu = med["ours"].cpu_us
    print(
        f"CPU per message, ours / Node-RED = {cpu / med['Node-RED'].cpu_us:.2f}, "
        f"ours / Node-RED+SQLite = {cpu / med['Node-RED+SQLite'].cpu_us:.2f}, "
        f"ours / paho = {cpu / med['paho'].cpu_us:.2f} (steadier than rates on a shared "
        f"machine); load average {os.getloadavg()[0]:.2f} at the end"
    )


if __name__ == "__main__":
    main()
