"""A district as a folder of files, imported in one go (what ``gridalarm cloud import`` loads).

Files, each optional, imported in this order: ``communities.csv``, ``grids.geojson``,
``devices.csv`` (rules.devices_csv format), ``device_locations.csv``, ``workers.csv``,
``shifts.csv``. Every file is parsed before anything is written; devices are upserted first
(through cloud.ingest.devices), then the registry in one transaction, so a reference error in a late
file leaves the registry as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection, Engine

from cloud.ingest.devices import upsert_devices
from cloud.registry import store as rs
from cloud.registry.grids_geojson import read_grids_geojson
from cloud.registry.people_csv import read_shifts_csv, read_workers_csv
from cloud.registry.places_csv import read_communities_csv, read_locations_csv
from rules.devices_csv import read_devices_csv
from wire.yamlconf import ConfigError, ConfigIssue, unreadable

_Store = Callable[[Connection, Sequence[tuple[int, Any]], str], int]
_Read = Callable[[str, str], Sequence[tuple[int, Any]]]

FILES: tuple[tuple[str, _Read, _Store], ...] = (
    ("communities.csv", read_communities_csv, rs.store_communities),
    ("grids.geojson", read_grids_geojson, rs.store_grids),
    ("device_locations.csv", read_locations_csv, rs.store_locations),
    ("workers.csv", read_workers_csv, rs.store_workers),
    ("shifts.csv", read_shifts_csv, rs.store_shifts),
)
DEVICES_FILE = "devices.csv"


def check_district(directory: Path) -> list[ConfigIssue]:
    """Every problem of the district files in *directory* (file, line, field), none written."""
    if not directory.is_dir():
        return [ConfigIssue(str(directory), None, "", "not a folder of district files")]
    issues: list[ConfigIssue] = []
    readers = [*((name, read) for name, read, _ in FILES), (DEVICES_FILE, read_devices_csv)]
    for name, read in readers:
        path = directory / name
        if not path.exists():
            continue
        try:
            read(path.read_text(encoding="utf-8"), str(path))
        except OSError as err:
            issues.extend(unreadable(str(path), err).issues)
        except ConfigError as err:
            issues.extend(err.issues)
    return issues


def import_district(db: Engine, directory: Path) -> dict[str, int]:
    """Import every known file present in *directory*; returns rows imported per file name."""
    parsed = [
        (name, path, read(path.read_text(encoding="utf-8"), str(path)), store)
        for name, read, store in FILES
        if (path := directory / name).exists()
    ]
    counts: dict[str, int] = {}
    devices_path = directory / DEVICES_FILE
    if devices_path.exists():
        devices = read_devices_csv(devices_path.read_text(encoding="utf-8"), str(devices_path))
        counts[DEVICES_FILE] = upsert_devices(db, devices)
    with db.begin() as conn:
        for name, path, items, store in parsed:
            counts[name] = store(conn, items, str(path))
    return counts
