"""A deterministic fictional district, shaped like the street offices' reports.

9 communities in a 3 x 3 km square near 24.48 N 118.09 E, each a 1 km block of 4 x 4 grids
(six of them split in two: 150 grids), about 1,500 devices — smoke detectors in shops and in
old people's homes, 90 lift blockers (10 in each community's high-rise), manhole covers,
5 flood-prone points — one gateway per building or area, and about 200 people: a day worker
per grid, four night workers per community, a supervisor per community and two duty
commanders (day, night), so every community is covered 24 x 7.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from cloud.registry.demo_names import COMMUNITIES, person, shop
from cloud.registry.geo import polygons_centroid
from cloud.registry.grids_geojson import write_grids_geojson
from cloud.registry.model import Community, DeviceLocation, Grid, Locale, Role, Shift, Worker
from cloud.registry.people_csv import write_shifts_csv, write_workers_csv
from cloud.registry.places_csv import write_communities_csv, write_locations_csv
from rules.devices import DeviceInfo
from rules.devices_csv import write_devices_csv

CENTRE = (24.48, 118.09)
SIDE_M = 3000.0
CELLS = 12  # per side: 250 m cells; a community is 4 x 4 cells
SPLITS = 6  # cells split in two: 144 + 6 = 150 grids
_M_PER_DEG = 111_320.0
_DAY, _NIGHT = (480, 1200), (1200, 480)


@dataclass(frozen=True, slots=True)
class _Patch:
    """A part of lattice cell (i, j): u in [u0, u1] across, all of v."""

    i: int
    j: int
    u0: float
    u1: float


@dataclass(frozen=True, slots=True)
class _Cell:
    grid: Grid
    patch: _Patch


@dataclass
class _District:
    rnd: random.Random
    corners: list[list[tuple[float, float]]]  # (lat, lon) per lattice vertex
    cells: list[_Cell] = field(default_factory=list)
    devices: list[DeviceInfo] = field(default_factory=list)
    locations: list[DeviceLocation] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def next_id(self, prefix: str, width: int = 4) -> str:
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return f"{prefix}-{self.counters[prefix]:0{width}d}"

    def point(self, p: _Patch, u: float, v: float) -> tuple[float, float]:
        """Bilinear point of the patch, u and v in [0, 1] (inside it: the cells are convex)."""
        u = p.u0 + (p.u1 - p.u0) * u
        (a, b), (c, d) = self.corners[p.j][p.i : p.i + 2]
        (e, f), (g, h) = self.corners[p.j + 1][p.i : p.i + 2]
        lat = (1 - v) * ((1 - u) * a + u * c) + v * ((1 - u) * e + u * g)
        lon = (1 - v) * ((1 - u) * b + u * d) + v * ((1 - u) * f + u * h)
        return round(lat, 6), round(lon, 6)


def make_demo_district(seed: int = 1) -> dict[str, str]:
    """The demo district as file name -> text; the same seed gives the same bytes."""
    d = _District(random.Random(seed), _lattice(random.Random(seed)))
    communities = sorted(
        (Community(cid, zh, en) for cid, zh, en, _ in COMMUNITIES), key=lambda c: c.id
    )
    _grids(d)
    _devices(d)
    workers, shifts = _people(d)
    return {  # sorted by id, as the exports are: export(import(files)) == files
        "communities.csv": write_communities_csv(communities),
        "grids.geojson": write_grids_geojson(sorted((c.grid for c in d.cells), key=_id)),
        "devices.csv": write_devices_csv(sorted(d.devices, key=lambda x: x.device)),
        "device_locations.csv": write_locations_csv(sorted(d.locations, key=lambda x: x.device)),
        "workers.csv": write_workers_csv(sorted(workers, key=_id)),
        "shifts.csv": write_shifts_csv(shifts),
    }


def _id(item: Grid | Worker) -> str:
    return item.id


def write_demo_district(directory: Path, seed: int = 1) -> list[Path]:
    """Write the demo district's files into *directory* (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in make_demo_district(seed).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def _lattice(rnd: random.Random) -> list[list[tuple[float, float]]]:
    lat0, lon0 = CENTRE
    step = SIDE_M / CELLS
    m_per_deg_lon = _M_PER_DEG * math.cos(math.radians(lat0))
    rows = []
    for j in range(CELLS + 1):
        row = []
        for i in range(CELLS + 1):
            inner = 0 < i < CELLS and 0 < j < CELLS  # the district's outline stays square
            dx, dy = (rnd.uniform(-0.12, 0.12) * step for _ in "xy") if inner else (0.0, 0.0)
            y, x = j * step - SIDE_M / 2 + dy, i * step - SIDE_M / 2 + dx
            row.append((lat0 + y / _M_PER_DEG, lon0 + x / m_per_deg_lon))
        rows.append(row)
    return rows


def _grids(d: _District) -> None:
    split = set(d.rnd.sample(range(CELLS * CELLS), SPLITS))
    for k, (cid, zh, _en, _street) in enumerate(COMMUNITIES):
        ci, cj, n = (k % 3) * 4, (k // 3) * 4, 0
        for j in range(cj, cj + 4):
            for i in range(ci, ci + 4):
                halves = ((0.0, 0.5), (0.5, 1.0)) if j * CELLS + i in split else ((0.0, 1.0),)
                for u0, u1 in halves:
                    n += 1
                    patch = _Patch(i, j, u0, u1)
                    ring = [d.point(patch, u, v) for u, v in ((0, 0), (1, 0), (1, 1), (0, 1))]
                    coords = [[[lon, lat] for lat, lon in [*ring, ring[0]]]]
                    centroid = polygons_centroid([coords])
                    assert centroid is not None  # a lattice cell has an area
                    geometry = json.dumps(
                        {"type": "Polygon", "coordinates": coords}, separators=(",", ":")
                    )
                    grid = Grid(f"{cid}-{n:02d}", cid, f"{zh}第{n}网格", geometry, centroid)
                    d.cells.append(_Cell(grid, patch))


def _devices(d: _District) -> None:
    by_community: dict[str, list[_Cell]] = {}
    for cell in d.cells:
        by_community.setdefault(cell.grid.community, []).append(cell)
    streets = {cid: street for cid, _zh, _en, street in COMMUNITIES}
    for cid, cells in by_community.items():
        for cell in cells:
            _shops_and_homes(d, cell, streets[cid])
        _high_rise(d, d.rnd.choice(cells), streets[cid])
        area_gw = d.next_id("gw")
        for cell in d.rnd.sample(cells, 14):
            _add(d, "mh", "manhole", cell, gateway=area_gw, address=streets[cid])
    for cell in d.rnd.sample(d.cells, 5):
        _add(d, "fl", "flood", cell, gateway=d.next_id("gw"), address="低洼路段")


def _shops_and_homes(d: _District, cell: _Cell, street: str) -> None:
    gw, building = d.next_id("gw"), d.next_id("bld")
    for _ in range(d.rnd.randint(2, 6)):
        _add(
            d,
            "smk",
            "smoke",
            cell,
            gateway=gw,
            building=building,
            address=street,
            floor="1",
            owner=shop(d.rnd),
        )
    gw, building = d.next_id("gw"), d.next_id("bld")
    number = d.rnd.randint(1, 40)
    for _ in range(d.rnd.randint(3, 6)):
        floor = str(d.rnd.randint(1, 7))
        room = f"{street}{number}号{floor}0{d.rnd.randint(1, 4)}室"
        _add(
            d,
            "smk",
            "smoke",
            cell,
            gateway=gw,
            building=building,
            address=room,
            floor=floor,
            owner=person(d.rnd),
        )


def _high_rise(d: _District, cell: _Cell, street: str) -> None:
    gw, building = d.next_id("gw"), d.next_id("bld")
    for lift in range(1, 11):
        _add(
            d,
            "eb",
            "ebike",
            cell,
            gateway=gw,
            building=building,
            address=f"{street}高层{lift}号电梯",
            owner="物业服务中心",
        )


def _add(
    d: _District,
    prefix: str,
    kind: str,
    cell: _Cell,
    *,
    gateway: str,
    building: str = "",
    address: str,
    floor: str = "",
    owner: str = "",
) -> None:
    device = d.next_id(prefix)
    lat, lon = d.point(cell.patch, d.rnd.uniform(0.1, 0.9), d.rnd.uniform(0.1, 0.9))
    if not address.endswith(("室", "电梯")):
        address = f"{address}{d.rnd.randint(1, 199)}号"
    d.devices.append(DeviceInfo(device, gateway, kind, cell.grid.id, building, cell.grid.community))
    phone = f"+86139{int(d.next_id('owner', 8)[6:]):08d}" if owner else ""
    d.locations.append(DeviceLocation(device, lat, lon, address, building, floor, owner, phone))


def _people(d: _District) -> tuple[list[Worker], list[Shift]]:
    workers: list[Worker] = []
    shifts: list[Shift] = []

    def hire(
        role: Role,
        community: str,
        grids: tuple[str, ...],
        hours: tuple[int, int],
        days: frozenset[int],
    ) -> None:
        n = len(workers) + 1
        wid = {Role.WORKER: f"w-{n:04d}", Role.SUPERVISOR: f"sup-{community}"}.get(role, f"cmd-{n}")
        locale = Locale.EN if n % 25 == 0 else Locale.ZH_CN
        workers.append(
            Worker(wid, person(d.rnd), f"+8613800000{n:03d}", locale, role, community, grids)
        )
        shifts.append(Shift(wid, days, *hours))

    for cid, *_ in COMMUNITIES:
        grids = [c.grid.id for c in d.cells if c.grid.community == cid]
        for k, grid in enumerate(grids):
            hire(Role.WORKER, cid, (grid,), _DAY, _five_days(k))
        for k in range(4):  # night: each worker's share of the grids, home grid first
            hire(Role.WORKER, cid, tuple(grids[k::4]), _NIGHT, _five_days(k))
        hire(Role.SUPERVISOR, cid, (), (510, 1050), frozenset(range(5)))
    hire(Role.COMMANDER, "", (), _DAY, frozenset(range(7)))
    hire(Role.COMMANDER, "", (), _NIGHT, frozenset(range(7)))
    return workers, shifts


def _five_days(k: int) -> frozenset[int]:
    """Five days a week, rotating with k so that any four consecutive k cover every day."""
    return frozenset((k + j) % 7 for j in range(5))
