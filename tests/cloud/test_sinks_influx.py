"""InfluxSink against a real VictoriaMetrics speaking /api/v2/write, read back via export."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud.sinks import InfluxSink, Point
from cloud.sinks.lineprotocol import ns_time
from tests.support import need_service, until, wait_until

NOW = time.time() - 3600  # export ends at "now" by default; keep points in the past
FIELDS = {
    "smoke": {"obscuration_pct_per_m": 0.12, "battery_mv": 2987, "alarm": True},
    "ebike": {"current_a": 3.5, "charging": False},
    "manhole": {"tilt_deg": 1.25, "open": True},
    "flood": {"level_mm": 412, "rate_mm_per_min": -0.5},
}


class VictoriaMetrics:
    """A victoria-metrics process on a loopback port, restartable on the same data path."""

    def __init__(self, binary: str, data: Path) -> None:
        self.binary = binary
        self.data = data
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.data}",
                "-retentionPeriod=100y",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.healthy, 20, "victoria-metrics /health", step_s=0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(20)
            self.proc = None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def export(self, match: str) -> list[dict[str, Any]]:
        """Force a flush, then every series matching *match* with its samples."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).close()
        query = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=10) as r:
            return [json.loads(line) for line in r.read().splitlines() if line]


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    binary = shutil.which("victoria-metrics") or shutil.which("/usr/bin/victoria-metrics")
    if binary is None:
        need_service("victoria-metrics (apt-get install victoria-metrics)")
    assert binary is not None
    server = VictoriaMetrics(binary, tmp_path_factory.mktemp("vm"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def sink_factory(vm: VictoriaMetrics) -> AsyncIterator[Any]:
    made: list[tuple[InfluxSink, asyncio.Task[None]]] = []

    def make(**kwargs: Any) -> InfluxSink:
        s = InfluxSink(vm.url, "token", "org", "bucket", **kwargs)
        made.append((s, asyncio.create_task(s.run(), name="test.influx-sink")))
        return s

    yield make
    for s, task in made:
        task.cancel()
        await asyncio.wait([task])
        await s.aclose()


def series_of(rows: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[dict[str, str], list]]:
    """{(series name, device): (tags, [(ms, value), …])}."""
    out = {}
    for row in rows:
        metric = dict(row["metric"])
        name = metric.pop("__name__")
        samples = list(zip(row["timestamps"], row["values"], strict=True))
        out[name, metric["device"]] = (metric, samples)
    return out


def expected_samples(points: list[Point]) -> dict[tuple[str, str], list[tuple[int, float]]]:
    out: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for p in points:
        for field, value in p.fields.items():
            ms = ns_time(p.ts) // 1_000_000  # VictoriaMetrics keeps ms, truncating
            out.setdefault((f"{p.measurement}_{field}", p.device), []).append((ms, float(value)))
    return out


def points_for(run: str, n: int, start: float = NOW) -> list[Point]:
    kinds = list(FIELDS)
    return [
        Point(
            kinds[i % 4],
            f"{run}-{kinds[i % 4]}-{i % 3}",
            f"gw-{i % 2}",
            "grid-9",
            start + i * 0.0137,
            {k: (v if isinstance(v, bool) else v + i) for k, v in FIELDS[kinds[i % 4]].items()},
        )
        for i in range(n)
    ]


async def test_writes_all_four_device_types(vm: VictoriaMetrics, sink_factory: Any) -> None:
    run = uuid.uuid4().hex[:8]
    sink = sink_factory(batch_size=50)
    points = points_for(run, 400)
    sink.submit(points[:150])
    sink.submit(points[150:])
    assert await sink.flush(15)
    assert sink.stats.written == 400
    assert sink.stats.dropped == sink.stats.errors == 0

    got = series_of(vm.export(f'{{device=~"{run}-.*"}}'))
    want = expected_samples(points)
    assert set(got) == set(want)
    for key, (tags, samples) in got.items():
        assert sorted(samples) == sorted(want[key]), key
        device = key[1]
        assert tags == {
            "device": device,
            "gateway": next(p.gateway for p in points if p.device == device),
            "grid": "grid-9",
        }
    assert {name for name, _ in got} == {f"{t}_{f}" for t, fs in FIELDS.items() for f in fs}


async def test_server_down_buffers_then_delivers_each_point_once(
    vm: VictoriaMetrics, sink_factory: Any
) -> None:
    run = uuid.uuid4().hex[:8]
    sink = sink_factory(batch_size=100, flush_interval_ms=100)
    before = points_for(run, 200)
    sink.submit(before)
    assert await sink.flush(15)

    vm.stop()
    during = points_for(run, 1000, start=NOW + 100)
    for i in range(0, 1000, 100):
        sink.submit(during[i : i + 100])
        await asyncio.sleep(0.05)  # a steady trickle of readings while the server is gone
    await until(lambda: sink.stats.errors > 0, 20, "the sink noticing the outage")
    assert not await sink.flush(0.5)
    assert sink.stats.buffered > 0

    vm.start()
    assert await sink.flush(60)
    assert sink.stats.written == 1200
    assert sink.stats.dropped == 0

    got = series_of(vm.export(f'{{device=~"{run}-.*"}}'))
    want = expected_samples(before + during)
    assert {k: sorted(s) for k, (_, s) in got.items()} == {k: sorted(s) for k, s in want.items()}


async def test_buffer_bound_while_down_keeps_the_newest(
    vm: VictoriaMetrics, sink_factory: Any
) -> None:
    run = uuid.uuid4().hex[:8]
    sink = sink_factory(batch_size=50, flush_interval_ms=50, max_buffered=100)
    vm.stop()
    try:
        first = points_for(run + "x", 1)
        sink.submit(first)
        await until(lambda: sink.stats.errors > 0, 20, "the sink noticing the outage")
        points = points_for(run, 300, start=NOW + 200)
        sink.submit(points)
        await until(lambda: sink.stats.buffered == 100, 20, "failed batches settling")
        assert sink.stats.dropped == 201
        assert sink.stats.submitted == 301
    finally:
        vm.start()
    assert await sink.flush(60)
    got = series_of(vm.export(f'{{device=~"{run}.*"}}'))
    assert {k: sorted(s) for k, (_, s) in got.items()} == {
        k: sorted(s) for k, s in expected_samples(points[200:]).items()
    }


async def test_rejected_lines_are_dropped_not_retried(
    vm: VictoriaMetrics, sink_factory: Any
) -> None:
    sink = sink_factory(batch_size=10, flush_interval_ms=50)
    sink.submit([Point("smoke", "d", "g", "x", NOW, {"nan_only": float("nan")})])
    assert await sink.flush(5)
    assert sink.stats.dropped == 1
    assert sink.stats.written == 0
