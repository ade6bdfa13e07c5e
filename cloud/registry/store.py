"""Registry reads and writes: import and export of each file, positions, posts, snapshots.

Every import parses the whole file first, then checks references (a grid's community, a
worker's grids, a shift's worker, a location's device) and writes in one transaction: a bad
file changes nothing, and its ConfigError names the file, line and field of every problem.
Imports upsert by id; a shifts file replaces all shifts of the workers it names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloud.ingest import devices as ingest_devices
from cloud.registry import tables as t
from cloud.registry.grids_geojson import read_grids_geojson, write_grids_geojson
from cloud.registry.model import (
    Community,
    DeviceLocation,
    Grid,
    Locale,
    Point,
    Position,
    Registry,
    Role,
    Shift,
    Worker,
)
from cloud.registry.people_csv import (
    read_shifts_csv,
    read_workers_csv,
    write_shifts_csv,
    write_workers_csv,
)
from cloud.registry.places_csv import (
    read_communities_csv,
    read_locations_csv,
    write_communities_csv,
    write_locations_csv,
)
from cloud.registry.shifts import format_hhmm, format_weekdays, parse_hhmm, parse_weekdays
from wire.yamlconf import ConfigError, ConfigIssue

_CHUNK = 500  # ids per IN (...) clause: well under SQLite's parameter limit


def import_communities_csv(db: Engine, text: str, filename: str) -> int:
    """Upsert communities from ``id,name_zh,name_en`` CSV; returns the row count."""
    items = read_communities_csv(text, filename)
    with db.begin() as conn:
        return store_communities(conn, items, filename)


def import_grids_geojson(db: Engine, text: str, filename: str) -> int:
    """Upsert grids from a GeoJSON FeatureCollection; their communities must be known."""
    items = read_grids_geojson(text, filename)
    with db.begin() as conn:
        return store_grids(conn, items, filename)


def import_workers_csv(db: Engine, text: str, filename: str) -> int:
    """Upsert workers (and their assigned grids); communities and grids must be known."""
    items = read_workers_csv(text, filename)
    with db.begin() as conn:
        return store_workers(conn, items, filename)


def import_shifts_csv(db: Engine, text: str, filename: str) -> int:
    """Replace the shifts of every worker the file names; the workers must be known."""
    items = read_shifts_csv(text, filename)
    with db.begin() as conn:
        return store_shifts(conn, items, filename)


def import_device_locations_csv(db: Engine, text: str, filename: str) -> int:
    """Upsert device locations; the devices must be registered (``cloud.ingest.devices``)."""
    items = read_locations_csv(text, filename)
    with db.begin() as conn:
        return store_locations(conn, items, filename)


def store_communities(conn: Connection, items: Sequence[tuple[int, Community]], _f: str) -> int:
    rows = [{"id": c.id, "name_zh": c.name_zh, "name_en": c.name_en} for _, c in items]
    return _replace(conn, t.communities.c.id, rows)


def store_grids(conn: Connection, items: Sequence[tuple[int, Grid]], filename: str) -> int:
    known = _ids(conn, t.communities.c.id)
    refs = ((line, "properties.community", g.community) for line, g in items)
    _check(filename, (refs, known, "community"))
    rows = [
        {
            "id": g.id,
            "community": g.community,
            "name": g.name,
            "geometry": g.geometry,
            "centroid_lat": g.centroid.lat,
            "centroid_lon": g.centroid.lon,
        }
        for _, g in items
    ]
    return _replace(conn, t.grids.c.id, rows)


def store_workers(conn: Connection, items: Sequence[tuple[int, Worker]], filename: str) -> int:
    communities, grids = _ids(conn, t.communities.c.id), _ids(conn, t.grids.c.id)
    _check(
        filename,
        (
            ((n, "community", w.community) for n, w in items if w.community),
            communities,
            "community",
        ),
        (((n, "grids", g) for n, w in items for g in w.grids), grids, "grid"),
    )
    rows = [
        {
            "id": w.id,
            "name": w.name,
            "phone": w.phone,
            "locale": w.locale.value,
            "role": w.role.value,
            "community": w.community,
            "push_subscription": w.push_subscription,
        }
        for _, w in items
    ]
    _delete(conn, t.worker_grids.c.worker, [w.id for _, w in items])
    links = [
        {"worker": w.id, "rank": i, "grid": g} for _, w in items for i, g in enumerate(w.grids)
    ]
    if links:
        conn.execute(sa.insert(t.worker_grids), links)
    return _replace(conn, t.workers.c.id, rows)


def store_shifts(conn: Connection, items: Sequence[tuple[int, Shift]], filename: str) -> int:
    refs = ((line, "worker", s.worker) for line, s in items)
    _check(filename, (refs, _ids(conn, t.workers.c.id), "worker"))
    _delete(conn, t.shifts.c.worker, sorted({s.worker for _, s in items}))
    rows = [
        {
            "worker": s.worker,
            "weekdays": format_weekdays(s.weekdays),
            "start": format_hhmm(s.start_min),
            "end": format_hhmm(s.end_min),
            "tz": s.tz,
        }
        for _, s in items
    ]
    if rows:
        conn.execute(sa.insert(t.shifts), rows)
    return len(rows)


def store_locations(
    conn: Connection, items: Sequence[tuple[int, DeviceLocation]], filename: str
) -> int:
    refs = ((line, "device", d.device) for line, d in items)
    _check(filename, (refs, _ids(conn, ingest_devices.devices.c.device), "device"))
    rows = [
        {
            "device": d.device,
            "lat": d.lat,
            "lon": d.lon,
            "address": d.address,
            "building": d.building,
            "floor": d.floor,
            "owner": d.owner,
            "owner_phone": d.owner_phone,
        }
        for _, d in items
    ]
    return _replace(conn, t.device_locations.c.device, rows)


def _ids(conn: Connection, column: sa.Column[Any]) -> set[str]:
    return set(conn.execute(sa.select(column)).scalars())


def _check(filename: str, *refs: tuple[Iterable[tuple[int, str, str]], set[str], str]) -> None:
    """Raise one ConfigError for every reference (line, field, value) not in its known set."""
    issues = sorted(
        (
            ConfigIssue(filename, line, field, f"{value!r} is not a known {what}")
            for pairs, known, what in refs
            for line, field, value in pairs
            if value not in known
        ),
        key=lambda i: i.line or 0,
    )
    if issues:
        raise ConfigError(issues)


def _delete(conn: Connection, column: sa.Column[Any], keys: Sequence[str]) -> None:
    for i in range(0, len(keys), _CHUNK):
        conn.execute(sa.delete(column.table).where(column.in_(keys[i : i + _CHUNK])))


def _replace(conn: Connection, key: sa.Column[Any], rows: list[dict[str, Any]]) -> int:
    """Portable upsert: delete the rows with these keys, insert them all in one executemany."""
    _delete(conn, key, [r[key.name] for r in rows])
    if rows:
        conn.execute(sa.insert(key.table), rows)
    return len(rows)


def load_registry(db: Engine) -> Registry:
    """The whole registry as one consistent snapshot (one read transaction)."""
    with db.begin() as conn:
        return Registry(
            communities=tuple(
                Community(r.id, r.name_zh, r.name_en)
                for r in conn.execute(sa.select(t.communities).order_by(t.communities.c.id))
            ),
            grids=tuple(
                Grid(r.id, r.community, r.name, r.geometry, Point(r.centroid_lat, r.centroid_lon))
                for r in conn.execute(sa.select(t.grids).order_by(t.grids.c.id))
            ),
            workers=_workers(conn),
            shifts=tuple(
                Shift(
                    r.worker,
                    parse_weekdays(r.weekdays),
                    parse_hhmm(r.start),
                    parse_hhmm(r.end, allow_24=True),
                    r.tz,
                )
                for r in conn.execute(sa.select(t.shifts).order_by(t.shifts.c.id))
            ),
            positions=tuple(
                Position(r.worker, r.lat, r.lon, r.ts)
                for r in conn.execute(sa.select(t.positions).order_by(t.positions.c.worker))
            ),
            locations=tuple(
                DeviceLocation(
                    r.device, r.lat, r.lon, r.address, r.building, r.floor, r.owner, r.owner_phone
                )
                for r in conn.execute(
                    sa.select(t.device_locations).order_by(t.device_locations.c.device)
                )
            ),
            grid_supervisors={
                r.grid: r.worker for r in conn.execute(sa.select(t.grid_supervisors))
            },
            duty_commander=conn.execute(
                sa.select(t.duty.c.worker).where(t.duty.c.post == "commander")
            ).scalar(),
        )


def _workers(conn: Connection) -> tuple[Worker, ...]:
    grids: dict[str, list[str]] = {}
    for r in conn.execute(
        sa.select(t.worker_grids).order_by(t.worker_grids.c.worker, t.worker_grids.c.rank)
    ):
        grids.setdefault(r.worker, []).append(r.grid)
    return tuple(
        Worker(
            r.id,
            r.name,
            r.phone,
            Locale(r.locale),
            Role(r.role),
            r.community,
            tuple(grids.get(r.id, ())),
            r.push_subscription,
        )
        for r in conn.execute(sa.select(t.workers).order_by(t.workers.c.id))
    )


def record_position(db: Engine, worker: str, lat: float, lon: float, ts: float) -> bool:
    """Store a worker's position unless a newer one is already stored; True if stored."""
    with db.begin() as conn:
        row = {"worker": worker, "lat": lat, "lon": lon, "ts": ts}
        done = conn.execute(
            sa.update(t.positions)
            .where(t.positions.c.worker == worker, t.positions.c.ts < ts)
            .values(row)
        ).rowcount
        if done:
            return True
        if conn.execute(sa.select(t.positions.c.ts).where(t.positions.c.worker == worker)).first():
            return False
        conn.execute(sa.insert(t.positions).values(row))
        return True


def set_grid_supervisor(db: Engine, grid: str, worker: str | None) -> None:
    """Name a grid's supervisor explicitly (None: back to the community's supervisor)."""
    with db.begin() as conn:
        conn.execute(sa.delete(t.grid_supervisors).where(t.grid_supervisors.c.grid == grid))
        if worker is not None:
            conn.execute(sa.insert(t.grid_supervisors).values(grid=grid, worker=worker))


def set_duty_commander(db: Engine, worker: str | None) -> None:
    """Designate the duty commander (preferred whenever on shift); None clears it."""
    with db.begin() as conn:
        conn.execute(sa.delete(t.duty).where(t.duty.c.post == "commander"))
        if worker is not None:
            conn.execute(sa.insert(t.duty).values(post="commander", worker=worker))


def export_communities_csv(db: Engine) -> str:
    return write_communities_csv(load_registry(db).communities)


def export_grids_geojson(db: Engine) -> str:
    return write_grids_geojson(load_registry(db).grids)


def export_workers_csv(db: Engine) -> str:
    return write_workers_csv(load_registry(db).workers)


def export_shifts_csv(db: Engine) -> str:
    return write_shifts_csv(load_registry(db).shifts)


def export_device_locations_csv(db: Engine) -> str:
    return write_locations_csv(load_registry(db).locations)


def subscription(worker: Worker) -> dict[str, Any] | None:
    """A worker's Web Push subscription as a dict, or None."""
    return json.loads(worker.push_subscription) if worker.push_subscription else None


def set_push_subscription(db: Engine, worker: str, subscription_json: str | None) -> bool:
    """Store (None: clear) a worker's Web Push subscription JSON; False if no such worker."""
    with db.begin() as conn:
        done = conn.execute(
            sa.update(t.workers)
            .where(t.workers.c.id == worker)
            .values(push_subscription=subscription_json)
        ).rowcount
    return bool(done)
