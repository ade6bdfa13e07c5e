"""Ranking: grid first, then distance (fresh position, else home grid), then load; duty only."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.dispatch.ranking import WorkerIndex, rank_candidates
from cloud.registry.geo import haversine_m
from cloud.registry.model import Grid, Point, Position, Registry, Role, Shift, Worker
from cloud.registry.shifts import shift_covers

MONDAY = 1_714_924_800.0  # 2024-05-06 00:00 Asia/Shanghai
NOON = MONDAY + 12 * 3600
LAT, LON, STEP = 24.48, 118.09, 0.01  # grids A, B, C side by side, ~1 km apart
ALL_WEEK = Shift("", frozenset(range(7)), 0, 0)


def grid(gid: str, k: int, community: str = "north") -> Grid:
    lon = LON + k * STEP
    ring = [[lon, LAT], [lon + STEP, LAT], [lon + STEP, LAT + STEP], [lon, LAT + STEP], [lon, LAT]]
    geometry = json.dumps({"type": "Polygon", "coordinates": [ring]})
    return Grid(gid, community, gid, geometry, Point(LAT + STEP / 2, lon + STEP / 2))


GRIDS = (grid("A", 0), grid("B", 1), grid("C", 2, "south"))
CENTRE = {g.id: g.centroid for g in GRIDS}


def worker(wid: str, *grids: str, role: Role = Role.WORKER, community: str = "north") -> Worker:
    return Worker(wid, wid, "+8613800000001", role=role, community=community, grids=grids)


def registry(
    workers: list[Worker],
    *,
    off: tuple[str, ...] = (),
    positions: tuple[Position, ...] = (),
    supervisors: dict[str, str] | None = None,
    commander: str | None = None,
) -> Registry:
    shifts = tuple(replace(ALL_WEEK, worker=w.id) for w in workers if w.id not in off)
    return Registry(
        grids=GRIDS,
        workers=tuple(workers),
        shifts=shifts,
        positions=positions,
        grid_supervisors=supervisors or {},
        duty_commander=commander,
    )


def near(gid: str, dlon: float = 0.0) -> Point:
    return Point(CENTRE[gid].lat, CENTRE[gid].lon + dlon)


def fix(wid: str, p: Point, ts: float) -> Position:
    return Position(wid, p.lat, p.lon, ts)


def ranked(reg: Registry, at: Point | None, gid: str, **kw: object) -> list[str]:
    fresh = kw.pop("fresh_s", 900.0)
    index = WorkerIndex.build(reg, position_fresh_s=fresh)  # type: ignore[arg-type]
    limit = kw.pop("limit", 5)
    now = kw.pop("now", NOON)
    return [c.worker.id for c in rank_candidates(at, gid, now, index, limit=limit, **kw)]  # type: ignore[arg-type]


CASES = [
    pytest.param(  # the grid's worker, far away, beats a stranger standing at the alarm
        registry(
            [worker("a1", "A"), worker("b1", "B")],
            positions=(
                Position("a1", LAT, LON + 0.05, NOON - 60),
                fix("b1", near("B"), NOON),
            ),
        ),
        near("B", -0.009),
        "A",
        {},
        ["a1", "b1"],
        id="grid-beats-distance",
    ),
    pytest.param(  # nearest first among the rest
        registry([worker("a1", "A"), worker("b1", "B"), worker("c1", "C")]),
        near("C", -0.004),
        "A",
        {},
        ["a1", "c1", "b1"],
        id="then-distance",
    ),
    pytest.param(  # b1's fix next to the alarm is 20 min old: b1 counts from B's centroid
        registry(
            [worker("b1", "B"), worker("c1", "C")],
            positions=(fix("b1", near("C"), NOON - 1200),),
        ),
        near("C", 0.001),
        "A",
        {},
        ["c1", "b1"],
        id="stale-position-falls-back",
    ),
    pytest.param(  # the same fix, fresh enough under a 30 min setting
        registry(
            [worker("b1", "B"), worker("c1", "C")],
            positions=(fix("b1", near("C", 0.001), NOON - 1200),),
        ),
        near("C", 0.001),
        "A",
        {"fresh_s": 1800.0},
        ["b1", "c1"],
        id="fresh-position-wins",
    ),
    pytest.param(  # same place (same home grid): the less loaded first, then by id
        registry([worker("b2", "B"), worker("b1", "B"), worker("b3", "B")]),
        near("A"),
        "A",
        {"open_load": {"b1": 2, "b2": 1}},
        ["b3", "b2", "b1"],
        id="load-breaks-ties",
    ),
    pytest.param(  # load also orders the grid's own workers at equal distance
        registry([worker("a1", "A"), worker("a2", "A")]),
        near("A"),
        "A",
        {"open_load": {"a1": 3}},
        ["a2", "a1"],
        id="load-in-grid",
    ),
    pytest.param(  # off duty: not a candidate, however close
        registry([worker("a1", "A"), worker("b1", "B")], off=("a1",)),
        near("A"),
        "A",
        {},
        ["b1"],
        id="off-duty-excluded",
    ),
    pytest.param(  # supervisors and commanders are escalation targets, not candidates
        registry([worker("s1", "A", role=Role.SUPERVISOR), worker("b1", "B")]),
        near("A"),
        "A",
        {},
        ["b1"],
        id="only-grid-workers",
    ),
    pytest.param(  # escalation's "next nearest": the ones already tried are skipped
        registry([worker("a1", "A"), worker("b1", "B"), worker("c1", "C")]),
        near("A"),
        "A",
        {"exclude": {"a1"}},
        ["b1", "c1"],
        id="exclude",
    ),
    pytest.param(  # no device location: the grid's centroid stands in
        registry([worker("b1", "B"), worker("c1", "C")]),
        None,
        "C",
        {},
        ["c1", "b1"],
        id="no-location-uses-grid",
    ),
    pytest.param(  # the limit cuts the list
        registry([worker("a1", "A"), worker("b1", "B"), worker("c1", "C")]),
        near("A"),
        "A",
        {"limit": 2},
        ["a1", "b1"],
        id="limit",
    ),
    pytest.param(  # a grid nobody is assigned to: pure distance
        registry([worker("a1", "A"), worker("c1", "C")]),
        near("B", 0.002),
        "B",
        {},
        ["c1", "a1"],
        id="unstaffed-grid",
    ),
]


@pytest.mark.parametrize(("reg", "at", "gid", "kw", "expected"), CASES)
def test_ranking(
    reg: Registry, at: Point | None, gid: str, kw: dict[str, object], expected: list[str]
) -> None:
    assert ranked(reg, at, gid, **kw) == expected


def test_candidate_says_why() -> None:
    reg = registry(
        [worker("a1", "A"), worker("b1", "B")], positions=(fix("b1", near("A"), NOON - 10),)
    )
    index = WorkerIndex.build(reg)
    first, second = rank_candidates(near("A"), "A", NOON, index, limit=2, open_load={"b1": 4})
    assert (first.in_grid, first.located_by, first.load) == (True, "home_grid", 0)
    assert first.distance_m == pytest.approx(0.0, abs=1e-6)
    assert (second.in_grid, second.located_by, second.load) == (False, "position", 4)


def test_positions_update_live_and_survive_refresh() -> None:
    reg = registry([worker("b1", "B"), worker("c1", "C")])
    index = WorkerIndex.build(reg)
    assert [c.worker.id for c in rank_candidates(near("A"), "A", NOON, index, limit=2)] == [
        "b1",
        "c1",
    ]
    index.update_position("c1", near("A").lat, near("A").lon, NOON - 5)
    index.update_position("c1", near("C").lat, near("C").lon, NOON - 50)  # older: ignored
    assert rank_candidates(near("A"), "A", NOON, index, limit=1)[0].worker.id == "c1"
    assert rank_candidates(near("A"), "A", NOON + 3600, index, limit=1)[0].worker.id == "b1"
    index = index.refresh(reg)  # a registry reload keeps the live fix
    assert rank_candidates(near("A"), "A", NOON, index, limit=1)[0].worker.id == "c1"


def test_escalation_targets() -> None:
    people = [
        worker("a1", "A"),
        worker("b1", "B"),
        worker("c1", "C", community="south"),
        worker("s-north", role=Role.SUPERVISOR),
        worker("s-b", "B", role=Role.SUPERVISOR),
        worker("s-south", role=Role.SUPERVISOR, community="south"),
        worker("cmd-day", role=Role.COMMANDER, community=""),
        worker("cmd-night", role=Role.COMMANDER, community=""),
    ]
    reg = registry(people, off=("b1", "cmd-night", "cmd-day"), supervisors={"C": "s-north"})
    day = Shift("cmd-day", frozenset(range(7)), 8 * 60, 20 * 60)
    night = Shift("cmd-night", frozenset(range(7)), 20 * 60, 8 * 60)
    index = WorkerIndex.build(
        replace(reg, shifts=(*reg.shifts, day, night), duty_commander="cmd-night")
    )
    sup = {g: getattr(index.supervisor_of(g), "id", None) for g in ("A", "B", "C", "nowhere")}
    assert sup == {"A": "s-north", "B": "s-b", "C": "s-north", "nowhere": None}
    assert index.duty_commander(NOON).id == "cmd-day"  # type: ignore[union-attr]
    assert index.duty_commander(MONDAY + 22 * 3600).id == "cmd-night"  # type: ignore[union-attr]
    nobody = WorkerIndex.build(replace(reg, duty_commander="cmd-night"))  # no commander shifts
    assert nobody.duty_commander(NOON).id == "cmd-night"  # type: ignore[union-attr]
    assert [w.id for w in index.community_workers("north", NOON)] == ["a1"]
    assert [w.id for w in index.community_workers("south", NOON)] == ["c1"]
    assert WorkerIndex.build(Registry()).duty_commander(NOON) is None


# -- the index agrees with a brute-force ranking of everyone -----------------------------------


def brute_force(
    reg: Registry, at: Point, gid: str, now: float, load: dict[str, int], limit: int
) -> list[str]:
    pos = {p.worker: p for p in reg.positions}
    on = {s.worker for s in reg.shifts if shift_covers(s, now)}
    keys = []
    for w in reg.workers:
        if w.id in on and w.role is Role.WORKER:
            p = pos.get(w.id)
            here = Point(p.lat, p.lon) if p and now - p.ts <= 900 else CENTRE[w.grids[0]]
            d = haversine_m(at.lat, at.lon, here.lat, here.lon)
            keys.append((gid not in w.grids, d, load.get(w.id, 0), w.id))
    return [k[3] for k in sorted(keys)[:limit]]


_spot = st.tuples(st.floats(-0.05, 0.05), st.floats(-0.05, 0.05))


@settings(max_examples=150, deadline=None)
@given(
    homes=st.lists(st.sampled_from("ABC"), min_size=1, max_size=60),
    fixes=st.lists(st.tuples(_spot, st.floats(0, 1800)), max_size=60),
    on=st.lists(st.booleans(), min_size=60, max_size=60),
    at=_spot,
    gid=st.sampled_from("ABCD"),
    limit=st.integers(1, 6),
    loads=st.lists(st.integers(0, 2), min_size=60, max_size=60),
)
def test_index_matches_brute_force(
    homes: list[str],
    fixes: list[tuple[tuple[float, float], float]],
    on: list[bool],
    at: tuple[float, float],
    gid: str,
    limit: int,
    loads: list[int],
) -> None:
    people = [worker(f"w{k:02d}", g) for k, g in enumerate(homes)]
    positions = tuple(
        Position(w.id, LAT + dy, LON + dx, NOON - age)
        for w, ((dy, dx), age) in zip(people, fixes, strict=False)
    )
    reg = registry(
        people,
        off=tuple(w.id for w, o in zip(people, on, strict=False) if not o),
        positions=positions,
    )
    load = {w.id: n for w, n in zip(people, loads, strict=False)}
    alarm = Point(LAT + at[0], LON + at[1])
    index = WorkerIndex.build(reg)
    got = [
        c.worker.id for c in rank_candidates(alarm, gid, NOON, index, limit=limit, open_load=load)
    ]
    assert got == brute_force(reg, alarm, gid, NOON, load, limit)


def test_far_alarm_still_finds_everyone() -> None:
    """An alarm far outside the district falls back to looking at everyone, still ordered."""
    reg = registry([worker("a1", "A"), worker("c1", "C")])
    got = rank_candidates(Point(LAT, LON + 3.0), "X", NOON, WorkerIndex.build(reg), limit=5)
    assert [c.worker.id for c in got] == ["c1", "a1"]
    assert all(math.isfinite(c.distance_m) for c in got)
