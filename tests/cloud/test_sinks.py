"""SqliteSink, its store and buffer, and the line-protocol encoding: against real SQLite."""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloud.sinks import Point, SqliteSink
from cloud.sinks.lineprotocol import encode, ns_time
from cloud.sinks.sqlite_table import ReadingStore
from tests.support import until

NOW = time.time()


def smoke(i: int, device: str = "smk-1", ts: float | None = None) -> Point:
    return Point(
        "smoke",
        device,
        "gw-1",
        "grid-7",
        NOW + i if ts is None else ts,
        {"obscuration_pct_per_m": 0.5 + i, "battery_mv": 3000 + i, "alarm": i % 2 == 0},
    )


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[SqliteSink]:
    s = SqliteSink(tmp_path / "readings.sqlite")
    yield s
    await s.aclose()


async def test_reads_back_exact_values_and_types(sink: SqliteSink) -> None:
    fields = {"f": 0.1 + 0.2, "i": 2**40 + 1, "t": True, "z": False, "neg": -0.0, "zero": 0}
    sink.submit(
        [
            Point("flood", "fld-1", "gw-2", "grid-1", NOW + 0.000123, fields),
            Point("flood", "fld-2", "gw-2", "grid-1", NOW, {"f": 9.0}),
        ]
    )
    assert await sink.flush(5)

    [(ts, got)] = await asyncio.to_thread(sink.recent, "fld-1", NOW)
    assert ts == NOW + 0.000123
    assert got == fields
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in fields.items()}
    assert math.copysign(1, got["neg"]) == -1
    assert sink.stats.written == 2
    assert sink.stats.buffered == 0
    assert sink.stats.last_write_ts is not None


async def test_recent_window_and_field_selection(sink: SqliteSink) -> None:
    sink.submit([smoke(i) for i in range(10)] + [smoke(i, device="smk-2") for i in range(10)])
    sink.submit([Point("smoke", "smk-1", "gw-1", "grid-7", NOW + 20, {"other": 1.0})])
    assert await sink.flush(5)

    window = sink.recent("smk-1", NOW + 3, NOW + 6)
    assert [ts for ts, _ in window] == [NOW + 3, NOW + 4, NOW + 5]  # until is exclusive
    assert window[0][1] == {"obscuration_pct_per_m": 3.5, "battery_mv": 3003, "alarm": False}

    only_battery = sink.recent("smk-1", NOW, fields=["battery_mv"])
    assert len(only_battery) == 10  # the reading without battery_mv is left out
    assert only_battery[-1] == (NOW + 9, {"battery_mv": 3009})


async def test_non_finite_floats_are_left_out(sink: SqliteSink) -> None:
    sink.submit([Point("ebike", "eb-1", "gw", "g", NOW, {"a": math.nan, "b": math.inf, "c": 1})])
    assert await sink.flush(5)
    assert sink.recent("eb-1", NOW) == [(NOW, {"c": 1})]


async def test_retention_by_time(tmp_path: Path) -> None:
    s = SqliteSink(tmp_path / "r.sqlite", retention_s=3600)
    s.submit([smoke(i, ts=NOW - 7200 + i) for i in range(50)])  # older than an hour
    s.submit([smoke(i, ts=NOW - 60 + i) for i in range(5)])
    assert await s.flush(5)
    assert [ts for ts, _ in s.recent("smk-1", 0)] == [NOW - 60 + i for i in range(5)]
    assert s.rows == 5
    await s.aclose()


async def test_retention_by_rows_keeps_the_newest(tmp_path: Path) -> None:
    s = SqliteSink(tmp_path / "r.sqlite", max_rows=1000)
    for start in range(0, 5000, 500):  # newest first in the file for the last ones
        s.submit([smoke(i) for i in reversed(range(start, start + 500))])
        assert await s.flush(5)
    assert s.rows == 1000
    assert [ts for ts, _ in s.recent("smk-1", 0)] == [NOW + i for i in range(4000, 5000)]
    await s.aclose()
    reopened = ReadingStore(tmp_path / "r.sqlite", retention_s=1e9, max_rows=1000)
    assert reopened.rows == 1000
    reopened.close()


def test_pruning_goes_in_bounded_steps(tmp_path: Path) -> None:
    store = ReadingStore(tmp_path / "p.sqlite", retention_s=1e12, max_rows=10**6, prune_batch=100)
    store.insert([smoke(i, ts=NOW - 7200 + i) for i in range(350)])
    assert store.rows == 350
    store.retention_s = 3600
    steps = []
    while n := store.prune_step():
        steps.append(n)
    assert steps == [100, 100, 100, 50]
    assert store.rows == 0
    store.close()


async def test_buffer_bound_drops_the_oldest_and_counts(sink: SqliteSink, tmp_path: Path) -> None:
    small = SqliteSink(tmp_path / "small.sqlite", max_buffered=100)
    small.submit([smoke(i) for i in range(60)])
    small.submit([smoke(i) for i in range(60, 250)])  # no writer running: only the bound acts
    assert small.stats.dropped == 150
    assert small.stats.buffered == 100
    assert small.stats.submitted == 250
    assert await small.flush(5)  # flush writes even without run()
    assert [ts for ts, _ in small.recent("smk-1", 0)] == [NOW + i for i in range(150, 250)]
    assert small.stats.written == 100
    await small.aclose()


async def test_concurrent_submit_while_writing_never_stalls_the_loop(sink: SqliteSink) -> None:
    # what the worker does at start (cloud.worker._settle_heap): the long-lived heap is frozen,
    # so a full collection does not walk it. Without this the test times the collector walking
    # the whole test session's heap (every module of the suite), not the sink.
    gc.collect()
    gc.freeze()
    try:
        await _submit_while_writing(sink)
    finally:
        gc.unfreeze()


async def _submit_while_writing(sink: SqliteSink) -> None:
    writer = asyncio.create_task(sink.run(), name="test.sink")
    worst_lag = 0.0

    async def ticker() -> None:
        nonlocal worst_lag
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.005)
            worst_lag = max(worst_lag, time.monotonic() - t - 0.005)

    tick = asyncio.create_task(ticker())
    total = 0
    for batch in range(200):
        sink.submit([smoke(batch * 500 + i, device=f"smk-{i % 50}") for i in range(500)])
        total += 500
        if batch % 20 == 0:  # readers meanwhile, from threads
            await asyncio.to_thread(sink.recent, "smk-3", 0)
        await asyncio.sleep(0)
    assert await sink.flush(30)
    tick.cancel()
    writer.cancel()
    await asyncio.wait([tick, writer])
    assert sink.stats.written == total == sink.rows
    assert sink.stats.dropped == 0
    assert len(sink.recent("smk-3", 0)) == total // 50
    assert worst_lag < 0.25, f"event loop stalled {worst_lag:.3f} s"


async def test_flush_after_the_writer_was_cancelled(sink: SqliteSink) -> None:
    writer = asyncio.create_task(sink.run())
    sink.submit([smoke(i) for i in range(10)])
    await until(lambda: sink.stats.written == 10, 5, "first write")
    writer.cancel()
    await asyncio.wait([writer])
    sink.submit([smoke(i) for i in range(10, 20)])  # the cloud's shutdown: flush, then aclose
    assert await sink.flush(5)
    assert len(sink.recent("smk-1", 0)) == 20


async def test_second_writer_is_refused(sink: SqliteSink) -> None:
    writer = asyncio.create_task(sink.run())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="already running"):
        await sink.run()
    writer.cancel()
    await asyncio.wait([writer])


@pytest.mark.parametrize(
    ("point", "line"),
    [
        (
            Point(
                "smoke", "smk 1,a=b", "gw-1", "grid\\", 1.5, {"alarm": True, "n": 3, "x y": 0.25}
            ),
            r"smoke,device=smk\ 1\,a\=b,gateway=gw-1,grid=grid alarm=true,n=3.0,x\ y=0.25"
            " 1500000000",
        ),
        (
            Point("my meas,x", "d", "g", "", 1700000000.001, {"ok": False, "bad": math.nan}),
            r"my\ meas\,x,device=d,gateway=g ok=false 1700000000000999928",
        ),
        (Point("flood", "d", "g", "x", 1.0, {"only_nan": math.inf}), None),
    ],
)
def test_line_protocol(point: Point, line: str | None) -> None:
    assert encode(point) == line


@pytest.mark.parametrize("ts", [0.0, 1.5, -1.25, NOW, 1700000000.123456789, 4102444800.999999])
def test_ns_time_is_the_nearest_nanosecond(ts: float) -> None:
    from fractions import Fraction

    assert ns_time(ts) == round(Fraction(ts) * 10**9)


async def test_a_redelivered_reading_is_stored_once(sink: SqliteSink) -> None:
    """After a crash the broker redelivers; (device, event time) identifies a reading."""
    sink.submit([smoke(1), smoke(2)])
    assert await sink.flush(5)
    sink.submit([smoke(2), smoke(3)])
    assert await sink.flush(5)
    rows = await asyncio.to_thread(sink.recent, "smk-1", NOW - 10)
    assert [ts for ts, _ in rows] == [NOW + 1, NOW + 2, NOW + 3]
