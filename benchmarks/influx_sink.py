"""InfluxSink points/s against VictoriaMetrics, with a raw influxdb-client baseline in the same run.

Run by hand:  python benchmarks/influx_sink.py [--points 200000] [--rounds 5]

Each round starts from pre-built Points (four device types, 3-4 fields each): the sink's time
runs from the first submit() until flush() reports everything written, so it includes encoding
line protocol, our buffer, the batching WriteApi and HTTP. The loop's worst stall while the
sink works is printed too (the sink must never block the event loop).
Baseline: the same points as pre-built line-protocol strings, written with influxdb-client's
synchronous WriteApi in batches of 5,000 (no encoding, no buffer, no callbacks).
For reference, the SqliteSink writing the same points (target for live ingest: >= 60k/s).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS

from cloud.sinks import InfluxSink, Point, SqliteSink
from cloud.sinks.lineprotocol import encode

BATCH = 5000
FIELDS = {
    "smoke": {
        "obscuration_pct_per_m": 0.12,
        "temperature_c": 23.4,
        "battery_mv": 2987,
        "alarm": False,
    },
    "ebike": {"current_a": 3.5, "temperature_c": 31.0, "charging": True},
    "manhole": {"tilt_deg": 1.25, "water_mm": 12, "open": False},
    "flood": {"level_mm": 412, "rate_mm_per_min": -0.5, "battery_mv": 3300},
}


def make_points(n: int, t0: float) -> list[Point]:
    kinds = list(FIELDS)
    return [
        Point(
            kinds[i % 4],
            f"{kinds[i % 4][:3]}-{i % 2000:04d}",
            f"gw-{i % 20:02d}",
            f"grid-{i % 7}",
            t0 + i * 0.001,
            FIELDS[kinds[i % 4]],
        )
        for i in range(n)
    ]


def start_vm(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            binary,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={data}",
            "-retentionPeriod=100y",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1).close()
            return proc, url
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)


def baseline_round(url: str, lines: list[str]) -> float:
    with InfluxDBClient(url=url, token="-", org="o") as client:
        api = client.write_api(write_options=SYNCHRONOUS)
        t = time.perf_counter()
        for i in range(0, len(lines), BATCH):
            api.write("b", "o", lines[i : i + BATCH], write_precision="ns")
        return len(lines) / (time.perf_counter() - t)


async def sink_round(sink: InfluxSink | SqliteSink, points: list[Point]) -> tuple[float, float]:
    worst = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not stop.is_set():
            t = time.monotonic()
            await asyncio.sleep(0.005)
            worst = max(worst, time.monotonic() - t - 0.005)

    async with asyncio.TaskGroup() as tg:
        writer = tg.create_task(sink.run())
        tick = tg.create_task(ticker())
        t = time.perf_counter()
        for i in range(0, len(points), 500):
            sink.submit(points[i : i + 500])
            await asyncio.sleep(0)
        ok = await sink.flush(120)
        elapsed = time.perf_counter() - t
        stop.set()
        await tick
        writer.cancel()
    await sink.aclose()
    assert ok and sink.stats.written == len(points), sink.stats
    return len(points) / elapsed, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n = args.points
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_vm(Path(tmp) / "vm")
        try:
            base, sink, lag, sqlite = [], [], [], []
            for r in range(args.rounds):
                t0 = time.time() - 86400 + r * 1000  # distinct samples per round, in the past
                points = make_points(n, t0)
                lines = [line for p in make_points(n, t0 + 500) if (line := encode(p))]
                base.append(baseline_round(url, lines))
                rate, worst = asyncio.run(
                    sink_round(
                        InfluxSink(url, "-", "o", "b", batch_size=BATCH, max_buffered=n), points
                    )
                )
                sink.append(rate)
                lag.append(worst)
                rate, _ = asyncio.run(
                    sink_round(SqliteSink(Path(tmp) / f"s{r}.sqlite", max_buffered=n), points)
                )
                sqlite.append(rate)
                print(
                    f"round {r + 1}: raw {base[-1]:,.0f}/s  InfluxSink {sink[-1]:,.0f}/s"
                    f"  (worst loop stall {worst * 1000:.1f} ms)  SqliteSink {sqlite[-1]:,.0f}/s"
                )
        finally:
            proc.terminate()
            proc.wait(20)
    med_base, med_sink = statistics.median(base), statistics.median(sink)
    print(f"\n{n:,} points x {args.rounds} rounds, batches of {BATCH:,}")
    print(f"baseline raw influxdb-client, pre-built lines: median {med_base:,.0f} points/s")
    print(
        f"InfluxSink -> VictoriaMetrics:                 median {med_sink:,.0f} points/s"
        f"  ratio {med_sink / med_base:.2f}  worst loop stall {max(lag) * 1000:.1f} ms"
    )
    print(
        f"SqliteSink (reference):                        median {statistics.median(sqlite):,.0f} points/s"
    )


if __name__ == "__main__":
    main()
