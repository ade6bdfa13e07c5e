"""Who gets an alarm: on-duty grid workers ranked by grid, distance and open load.

``WorkerIndex.build`` compiles a registry snapshot once — a :class:`Roster` for "who is on
duty", the workers of each grid, and a spatial hash of where each worker is (the last known
position while it is fresh, else the centroid of the home grid) — so one choice among
thousands of workers looks at a handful of hash cells, not at everyone. Pure: the clock is
passed in, nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from cloud.registry.geo import EARTH_RADIUS_M
from cloud.registry.model import Grid, Point, Registry, Role, Worker
from cloud.registry.shifts import Roster

DEFAULT_FRESH_S = 15 * 60.0
_KM_PER_DEG = 111.195  # on the mean sphere
_TARGET_PER_CELL = 8  # workers per occupied cell the hash aims for
_MARGIN = 0.9  # projected vs great-circle distance: safe for regions a few degrees across
Located = Literal["position", "home_grid", "unknown"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ranked worker, with the facts the rank came from (for the audit log)."""

    worker: Worker
    in_grid: bool  # assigned to the alarm's grid
    distance_m: float  # math.inf when either end has no location
    load: int  # open alarms assigned to the worker
    located_by: Located  # where distance_m was measured from


@dataclass(slots=True)
class _Where:
    """A point with its radians and cosine precomputed: haversine is then a few multiplies."""

    lat: float
    lon: float
    phi: float = field(init=False)
    lam: float = field(init=False)
    cos: float = field(init=False)

    def __post_init__(self) -> None:
        self.phi, self.lam = math.radians(self.lat), math.radians(self.lon)
        self.cos = math.cos(self.phi)

    def distance_m(self, o: _Where) -> float:
        h = (
            math.sin((o.phi - self.phi) / 2) ** 2
            + self.cos * o.cos * math.sin((o.lam - self.lam) / 2) ** 2
        )
        return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


class _Hash:
    """Worker indices bucketed by an equirectangular grid of square cells."""

    def __init__(self, points: list[_Where], lat_ref: float) -> None:
        self.kx = _KM_PER_DEG * math.cos(math.radians(lat_ref))
        xs, ys = [p.lon * self.kx for p in points], [p.lat * _KM_PER_DEG for p in points]
        area = (max(xs, default=0) - min(xs, default=0)) * (max(ys, default=0) - min(ys, default=0))
        cell = math.sqrt(area * _TARGET_PER_CELL / max(1, len(points)))
        self.cell_km = min(50.0, max(0.05, cell))
        self.cells: dict[tuple[int, int], list[int]] = {}

    def key(self, p: _Where) -> tuple[int, int]:
        return (
            math.floor(p.lon * self.kx / self.cell_km),
            math.floor(p.lat * _KM_PER_DEG / self.cell_km),
        )

    def add(self, i: int, p: _Where) -> None:
        self.cells.setdefault(self.key(p), []).append(i)

    def remove(self, i: int, p: _Where) -> None:
        bucket = self.cells.get(self.key(p), [])
        if i in bucket:
            bucket.remove(i)

    def ring(self, cx: int, cy: int, r: int) -> Iterator[list[int]]:
        """The buckets at Chebyshev distance exactly *r* cells from (cx, cy)."""
        get = self.cells.get
        if r == 0:
            yield get((cx, cy), [])
            return
        for x in range(cx - r, cx + r + 1):
            yield get((x, cy - r), [])
            yield get((x, cy + r), [])
        for y in range(cy - r + 1, cy + r):
            yield get((cx - r, y), [])
            yield get((cx + r, y), [])


class WorkerIndex:
    """Read-optimised view of the registry for dispatch and escalation."""

    def __init__(self, registry: Registry, position_fresh_s: float) -> None:
        self.fresh_s = position_fresh_s
        self.registry = registry
        self.workers = list(registry.workers)
        self._by_id = {w.id: i for i, w in enumerate(self.workers)}
        self.grids = {g.id: g for g in registry.grids}
        self.roster = Roster(
            (self._by_id[s.worker], s) for s in registry.shifts if s.worker in self._by_id
        )
        self._members: dict[str, list[int]] = {}
        self.home: list[_Where | None] = []
        for i, w in enumerate(self.workers):
            home = next((self.grids[g].centroid for g in w.grids if g in self.grids), None)
            self.home.append(_Where(home.lat, home.lon) if home else None)
            if w.role is Role.WORKER:
                for g in w.grids:
                    self._members.setdefault(g, []).append(i)
        self.pos: list[_Where | None] = [None] * len(self.workers)
        self.pos_ts: list[float] = [-math.inf] * len(self.workers)
        located = [p for p in self.home if p is not None]
        lat_ref = sum(p.lat for p in located) / len(located) if located else 0.0
        self.homes, self.fixes = _Hash(located, lat_ref), _Hash(located, lat_ref)
        for i, w in enumerate(self.workers):
            if w.role is Role.WORKER and (p := self.home[i]) is not None:
                self.homes.add(i, p)
        for fix in registry.positions:
            self.update_position(fix.worker, fix.lat, fix.lon, fix.ts)

    @classmethod
    def build(cls, registry: Registry, *, position_fresh_s: float = DEFAULT_FRESH_S) -> WorkerIndex:
        """Compile *registry*; a position older than *position_fresh_s* falls back to the grid."""
        return cls(registry, position_fresh_s)

    def refresh(self, registry: Registry) -> WorkerIndex:
        """A new index of *registry* that keeps any newer live position this one has seen."""
        new = WorkerIndex(registry, self.fresh_s)
        for i, p in enumerate(self.pos):
            if p is not None:
                new.update_position(self.workers[i].id, p.lat, p.lon, self.pos_ts[i])
        return new

    def update_position(self, worker: str, lat: float, lon: float, ts: float) -> None:
        """Take a worker's position, unless an equally new or newer one is already known."""
        i = self._by_id.get(worker)
        if i is None or ts <= self.pos_ts[i]:
            return
        old, new = self.pos[i], _Where(lat, lon)
        is_worker = self.workers[i].role is Role.WORKER
        if old is not None and is_worker:
            self.fixes.remove(i, old)
        self.pos[i], self.pos_ts[i] = new, ts
        if is_worker:
            self.fixes.add(i, new)

    def index_of(self, worker_id: str) -> int | None:
        return self._by_id.get(worker_id)

    def worker(self, worker_id: str) -> Worker | None:
        i = self._by_id.get(worker_id)
        return None if i is None else self.workers[i]

    def where(self, i: int, now: float) -> tuple[_Where | None, Located]:
        """Where worker *i* is assumed to be at *now*."""
        if now - self.pos_ts[i] <= self.fresh_s:
            return self.pos[i], "position"
        home = self.home[i]
        return home, "home_grid" if home is not None else "unknown"

    def on_duty(self, now: float) -> frozenset[int]:
        return self.roster.on_duty(now)

    def members(self, grid: str) -> list[int]:
        return self._members.get(grid, [])

    def supervisor_of(self, grid: str) -> Worker | None:
        """The explicit supervisor, else one supervising this grid, else the community's."""
        explicit = self.worker(self.registry.grid_supervisors.get(grid, ""))
        if explicit is not None:
            return explicit
        community = self.grids[grid].community if grid in self.grids else None
        supervisors = sorted(
            (w for w in self.workers if w.role is Role.SUPERVISOR),
            key=lambda w: (grid not in w.grids, w.id),
        )
        return next(
            (
                w
                for w in supervisors
                if grid in w.grids or (not w.grids and w.community == community)
            ),
            None,
        )

    def duty_commander(self, now: float) -> Worker | None:
        """The commander on shift (the designated one first); off-hours: the designated one."""
        commanders = [i for i, w in enumerate(self.workers) if w.role is Role.COMMANDER]
        designated = self._by_id.get(self.registry.duty_commander or "")
        on_duty = self.on_duty(now)
        order = sorted(
            commanders, key=lambda i: (i not in on_duty, i != designated, self.workers[i].id)
        )
        return self.workers[order[0]] if order else None

    def community_workers(self, community: str, now: float) -> list[Worker]:
        """The community's grid workers on duty at *now*, by id."""
        on_duty = self.on_duty(now)
        return sorted(
            (
                w
                for i, w in enumerate(self.workers)
                if i in on_duty and w.role is Role.WORKER and w.community == community
            ),
            key=lambda w: w.id,
        )

    def grid(self, grid_id: str) -> Grid | None:
        return self.grids.get(grid_id)


def rank_candidates(
    alarm_location: Point | None,
    grid: str,
    now: float,
    workers_view: WorkerIndex,
    *,
    limit: int,
    open_load: Mapping[str, int] | None = None,
    exclude: Collection[str] = (),
) -> list[Candidate]:
    """The best *limit* on-duty grid workers for an alarm in *grid* at *alarm_location*.

    Order: assigned to *grid* first, then distance, then open load (*open_load*: worker id
    to open alarms), then worker id. Without an alarm location the grid's centroid is used.
    *exclude* names workers already tried (escalation's "next nearest").
    """
    ix, load = workers_view, open_load or {}
    if alarm_location is None and (g := ix.grid(grid)) is not None:
        alarm_location = g.centroid
    at = _Where(alarm_location.lat, alarm_location.lon) if alarm_location else None
    on_duty = ix.on_duty(now)
    skip = {i for w in exclude if (i := ix.index_of(w)) is not None}
    members = ix.members(grid)
    ranked = [
        (True, s)
        for s in _score(ix, at, now, load, [i for i in members if i in on_duty and i not in skip])
    ]
    if len(ranked) < limit:
        skip.update(members)
        found = _nearby(ix, at, now, on_duty, skip=skip, need=limit - len(ranked))
        ranked += [(False, s) for s in _score(ix, at, now, load, found)]
    return [
        Candidate(ix.workers[i], in_grid, distance, n, how)
        for in_grid, (distance, n, _, i, how) in ranked[:limit]
    ]


def _score(
    ix: WorkerIndex, at: _Where | None, now: float, load: Mapping[str, int], found: list[int]
) -> list[tuple[float, int, str, int, Located]]:
    out = []
    for i in found:
        where, how = ix.where(i, now)
        d = at.distance_m(where) if at is not None and where is not None else math.inf
        wid = ix.workers[i].id
        out.append((d, load.get(wid, 0), wid, i, how))
    out.sort()
    return out


def _nearby(
    ix: WorkerIndex,
    at: _Where | None,
    now: float,
    on_duty: frozenset[int],
    *,
    skip: set[int],
    need: int,
) -> list[int]:
    """Indices of eligible workers including at least the *need* nearest to *at*."""
    if at is None or (not ix.homes.cells and not ix.fixes.cells):
        return [i for i in on_duty if i not in skip and ix.workers[i].role is Role.WORKER]
    fresh_s, pos_ts = ix.fresh_s, ix.pos_ts
    cx, cy = ix.homes.key(at)
    occupied = len(ix.homes.cells) + len(ix.fixes.cells)
    found: dict[int, float] = {}
    r = 0
    while True:
        for table, want_fresh in ((ix.homes, False), (ix.fixes, True)):
            for bucket in table.ring(cx, cy, r):
                for i in bucket:
                    if (
                        i in on_duty
                        and i not in skip
                        and (now - pos_ts[i] <= fresh_s) is want_fresh
                    ):
                        where = ix.pos[i] if want_fresh else ix.home[i]
                        found[i] = at.distance_m(where)  # type: ignore[arg-type]
        bound = r * ix.homes.cell_km * 1000 * _MARGIN
        if sum(d <= bound for d in found.values()) >= need:
            return list(found)
        if 8 * (r + 1) > occupied:  # rings now cost more than looking at everyone
            return [i for i in on_duty if i not in skip and ix.workers[i].role is Role.WORKER]
        r += 1
