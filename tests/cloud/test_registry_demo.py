"""The demo district: its sizes, its determinism, its geometry and its 24 x 7 coverage."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from cloud.registry import make_demo_district, write_demo_district
from cloud.registry.geo import in_polygons
from cloud.registry.grids_geojson import read_grids_geojson
from cloud.registry.model import Role
from cloud.registry.people_csv import read_shifts_csv, read_workers_csv
from cloud.registry.places_csv import read_communities_csv, read_locations_csv
from cloud.registry.shifts import Roster
from rules.devices_csv import read_devices_csv

MONDAY = 1_714_924_800.0  # 2024-05-06 00:00 Asia/Shanghai


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return make_demo_district(1)


def test_sizes(files: dict[str, str]) -> None:
    assert len(read_communities_csv(files["communities.csv"], "c")) == 9
    assert len(read_grids_geojson(files["grids.geojson"], "g")) == 150
    devices = read_devices_csv(files["devices.csv"], "d")
    assert 1400 <= len(devices) <= 1600
    kinds = Counter(d.type for d in devices)
    assert kinds["ebike"] == 90 and kinds["flood"] == 5 and kinds["manhole"] > 50
    lifts = Counter(d.building for d in devices if d.type == "ebike")
    assert sorted(lifts.values()) == [10] * 9  # 9 high-rises, 10 lift blockers each
    workers = [w for _, w in read_workers_csv(files["workers.csv"], "w")]
    assert 180 <= len(workers) <= 220
    roles = Counter(w.role for w in workers)
    assert roles[Role.SUPERVISOR] == 9 and roles[Role.COMMANDER] >= 1
    assigned = Counter(g for w in workers for g in w.grids)
    assert len(assigned) == 150 and set(assigned.values()) == {2}  # a day and a night worker


def test_ids_and_phones_look_like_the_field(files: dict[str, str]) -> None:
    devices = read_devices_csv(files["devices.csv"], "d")
    prefix = {"smoke": "smk", "ebike": "eb", "manhole": "mh", "flood": "fl"}
    assert all(re.fullmatch(prefix[d.type] + r"-\d{4}", d.device) for d in devices)
    assert all(re.fullmatch(r"gw-\d{4}", d.gateway) for d in devices)
    gateways_per_building = Counter(d.gateway for d in devices if d.building)
    assert len(gateways_per_building) == len({d.building for d in devices if d.building})
    phones = [w.phone for _, w in read_workers_csv(files["workers.csv"], "w")]
    assert len(set(phones)) == len(phones)
    assert all(re.fullmatch(r"\+8613800000\d{3}", p) for p in phones)
    assert any(
        re.search("[\u4e00-\u9fff]", w.name) for _, w in read_workers_csv(files["workers.csv"], "w")
    )


def test_deterministic(files: dict[str, str], tmp_path: Path) -> None:
    assert make_demo_district(1) == files
    assert make_demo_district(2)["device_locations.csv"] != files["device_locations.csv"]
    paths = write_demo_district(tmp_path, seed=1)
    assert {p.name: p.read_text(encoding="utf-8") for p in paths} == files


def test_every_device_sits_in_its_grid(files: dict[str, str]) -> None:
    grids = {g.id: g for _, g in read_grids_geojson(files["grids.geojson"], "g")}
    devices = {d.device: d for d in read_devices_csv(files["devices.csv"], "d")}
    locations = read_locations_csv(files["device_locations.csv"], "l")
    assert {loc.device for _, loc in locations} == set(devices)
    for _, loc in locations:
        grid = grids[devices[loc.device].grid]
        assert grid.community == devices[loc.device].community
        geometry = json.loads(grid.geometry)
        assert in_polygons(loc.lat, loc.lon, [geometry["coordinates"]]), loc.device
    lats = [g.centroid.lat for g in grids.values()]
    lons = [g.centroid.lon for g in grids.values()]
    assert 24.45 < min(lats) < max(lats) < 24.51 and 118.06 < min(lons) < max(lons) < 118.12


def test_every_community_is_covered_around_the_clock(files: dict[str, str]) -> None:
    workers = {w.id: w for _, w in read_workers_csv(files["workers.csv"], "w")}
    shifts = [s for _, s in read_shifts_csv(files["shifts.csv"], "s")]
    ids = sorted(workers)
    roster = Roster((ids.index(s.worker), s) for s in shifts)
    communities = {w.community for w in workers.values() if w.community}
    for minute in range(0, 7 * 1440, 30):
        on = [workers[ids[i]] for i in roster.on_duty(MONDAY + minute * 60)]
        covered = {w.community for w in on if w.role is Role.WORKER}
        assert covered == communities, minute
        assert any(w.role is Role.COMMANDER for w in on), minute


def test_columns_are_documented(files: dict[str, str]) -> None:
    header = next(csv.reader(io.StringIO(files["device_locations.csv"])))
    assert header == [
        "device",
        "lat",
        "lon",
        "address",
        "building",
        "floor",
        "owner",
        "owner_phone",
    ]
