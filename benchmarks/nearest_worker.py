"""Choosing the nearest on-duty worker among 2,000 (run by hand); target p99 < 1 ms.

Synthetic city: a 40 x 40 lattice of 250 m grids (10 x 10 km near 24.48 N 118.09 E),
2,000 grid workers (one per grid, a second in 400 of them), day or night shifts five days a
week, half of them with a last known position (some stale), open load on 10 % of them.
10,000 alarms at random places and random times of the week; each choice is
``rank_candidates(..., limit=N)`` against a ``WorkerIndex`` built once. Every choice is also
checked against a brute-force ranking of all workers.

Baseline (the brief's): a plain ``sorted()`` over the precomputed haversine distances of all
2,000 workers, timed alone; the distances are computed outside the timer. For context, the
naive full cost (on-duty filter + haversine of everyone + sort) is printed too.

    python benchmarks/nearest_worker.py [--workers 2000] [--alarms 10000] [--limit 2]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time

from cloud.dispatch.ranking import WorkerIndex, rank_candidates
from cloud.registry.geo import haversine_m
from cloud.registry.model import Grid, Point, Position, Registry, Shift, Worker
from cloud.registry.shifts import shift_covers

LAT0, LON0, SIDE, STEP_M = 24.48, 118.09, 40, 250.0
DLAT = STEP_M / 111_320
DLON = STEP_M / (111_320 * math.cos(math.radians(LAT0)))
WEEK0 = 1_714_924_800.0  # Mon 2024-05-06 00:00 +08:00


def _grid(i: int, j: int) -> Grid:
    lat, lon = LAT0 + j * DLAT, LON0 + i * DLON
    ring = [[lon, lat], [lon + DLON, lat], [lon + DLON, lat + DLAT], [lon, lat + DLAT], [lon, lat]]
    return Grid(
        f"g-{i:02d}-{j:02d}",
        f"c-{i // 10}{j // 10}",
        "",
        json.dumps(ring),
        Point(lat + DLAT / 2, lon + DLON / 2),
    )


def city(n_workers: int, rnd: random.Random) -> tuple[Registry, float]:
    grids = [_grid(i, j) for i in range(SIDE) for j in range(SIDE)]
    now = WEEK0 + 3 * 86400
    workers, shifts, positions = [], [], []
    for k in range(n_workers):
        g = grids[k % len(grids)]
        wid = f"w-{k:05d}"
        workers.append(
            Worker(wid, f"worker {k}", f"+86138{k:08d}", community=g.community, grids=(g.id,))
        )
        hours = (480, 1200) if rnd.random() < 0.6 else (1200, 480)
        first = rnd.randrange(7)
        shifts.append(Shift(wid, frozenset((first + d) % 7 for d in range(5)), *hours))
        if rnd.random() < 0.5:
            lat = g.centroid.lat + rnd.uniform(-3, 3) * DLAT
            lon = g.centroid.lon + rnd.uniform(-3, 3) * DLON
            positions.append(Position(wid, lat, lon, now - rnd.uniform(0, 1800)))
    return Registry(
        grids=tuple(grids), workers=tuple(workers), shifts=tuple(shifts), positions=tuple(positions)
    ), now


def brute_force(
    reg: Registry,
    at: Point,
    grid: str,
    now: float,
    load: dict[str, int],
    limit: int,
    fresh_s: float = 900.0,
) -> list[str]:
    centroids = {g.id: g.centroid for g in reg.grids}
    pos = {p.worker: p for p in reg.positions}
    on = {s.worker for s in reg.shifts if shift_covers(s, now)}
    keys = []
    for w in reg.workers:
        if w.id not in on:
            continue
        p = pos.get(w.id)
        here = Point(p.lat, p.lon) if p and now - p.ts <= fresh_s else centroids[w.grids[0]]
        d = haversine_m(at.lat, at.lon, here.lat, here.lon)
        keys.append((grid not in w.grids, d, load.get(w.id, 0), w.id))
    return [k[3] for k in sorted(keys)[:limit]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2000)
    ap.add_argument("--alarms", type=int, default=10_000)
    ap.add_argument("--limit", type=int, default=2)
    args = ap.parse_args()
    rnd = random.Random(42)
    reg, now0 = city(args.workers, rnd)
    t0 = time.perf_counter()
    index = WorkerIndex.build(reg)
    build_ms = (time.perf_counter() - t0) * 1e3
    load = {w.id: rnd.randint(1, 3) for w in reg.workers if rnd.random() < 0.1}
    alarms = []
    for _ in range(args.alarms):
        i, j = rnd.randrange(SIDE), rnd.randrange(SIDE)
        at = Point(LAT0 + (j + rnd.random()) * DLAT, LON0 + (i + rnd.random()) * DLON)
        alarms.append((at, f"g-{i:02d}-{j:02d}", now0 + rnd.uniform(-1800, 1800)))

    ours, base, naive, mismatches = [], [], [], 0
    centroids = {g.id: g.centroid for g in reg.grids}
    for n, (at, grid, now) in enumerate(alarms):
        t = time.perf_counter_ns()
        chosen = rank_candidates(at, grid, now, index, limit=args.limit, open_load=load)
        ours.append(time.perf_counter_ns() - t)
        # baseline: distances of all workers precomputed (untimed), then one plain sorted()
        dists = [
            (haversine_m(at.lat, at.lon, c.lat, c.lon), k)
            for k, c in enumerate(centroids[w.grids[0]] for w in reg.workers)
        ]
        t = time.perf_counter_ns()
        sorted(dists)[: args.limit]
        base.append(time.perf_counter_ns() - t)
        if n < 1000:  # correctness, and the naive full cost, on the first 1,000 alarms
            t = time.perf_counter_ns()
            expected = brute_force(reg, at, grid, now, load, args.limit)
            naive.append(time.perf_counter_ns() - t)
            mismatches += [c.worker.id for c in chosen] != expected

    def pct(xs: list[int], q: float) -> float:
        return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] / 1000

    print(
        f"{args.workers} workers, {args.alarms} alarms, limit {args.limit}; "
        f"index build {build_ms:.1f} ms"
    )
    for name, xs in (
        ("rank_candidates", ours),
        ("baseline sorted()", base),
        ("naive full (shifts+haversine+sort)", naive),
    ):
        print(
            f"  {name:36s} p50 {pct(xs, 0.5):8.1f} µs   p99 {pct(xs, 0.99):8.1f} µs   "
            f"mean {statistics.fmean(xs) / 1000:8.1f} µs"
        )
    print(
        f"  ratio rank_candidates / baseline: p50 {pct(ours, 0.5) / pct(base, 0.5):.2f}x, "
        f"p99 {pct(ours, 0.99) / pct(base, 0.99):.2f}x"
    )
    print(f"  disagreements with brute force (first 1,000 alarms): {mismatches}")


if __name__ == "__main__":
    main()
