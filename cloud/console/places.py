"""Read models of the simple pages: a device, a grid, a worker, and the board's filter lists."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.ingest.devices import devices
from cloud.lifecycle.model import State
from cloud.lifecycle.tables import lifecycle_alarms
from cloud.registry.tables import (
    communities,
    device_locations,
    grids,
    positions,
    worker_grids,
    workers,
)

RECENT_ALARMS = 50


def _one(conn: sa.Connection, query: sa.Select[Any]) -> dict[str, Any] | None:
    row = conn.execute(query).first()
    return dict(row._mapping) if row is not None else None


def _alarms(conn: sa.Connection, where: sa.ColumnElement[bool]) -> list[dict[str, Any]]:
    a = lifecycle_alarms
    rows = conn.execute(
        sa.select(a).where(where).order_by(a.c.raised_at.desc()).limit(RECENT_ALARMS)
    )
    return [dict(r._mapping) for r in rows]


def device_page(db: Engine, device: str) -> dict[str, Any] | None:
    """The device, where it is, its latest alarms; None if unknown."""
    with db.connect() as conn:
        info = _one(conn, sa.select(devices).where(devices.c.device == device))
        if info is None:
            return None
        loc = device_locations
        place = _one(conn, sa.select(loc).where(loc.c.device == device))
        alarms = _alarms(conn, lifecycle_alarms.c.device == device)
    return {"device": info, "place": place, "alarms": alarms}


def grid_page(db: Engine, grid: str) -> dict[str, Any] | None:
    """The grid, its workers and devices, its open alarms; None if unknown."""
    with db.connect() as conn:
        info = _one(
            conn, sa.select(grids.c.id, grids.c.name, grids.c.community).where(grids.c.id == grid)
        )
        if info is None:
            return None
        people = conn.execute(
            sa.select(workers.c.id, workers.c.name, workers.c.role)
            .join(worker_grids, worker_grids.c.worker == workers.c.id)
            .where(worker_grids.c.grid == grid)
        ).all()
        kit = conn.execute(
            sa.select(devices.c.device, devices.c.type).where(devices.c.grid == grid)
        ).all()
        in_grid = sa.select(devices.c.device).where(devices.c.grid == grid)
        open_ = lifecycle_alarms.c.state != State.RESOLVED.value
        alarms = _alarms(conn, sa.and_(lifecycle_alarms.c.device.in_(in_grid), open_))
    return {
        "grid": info,
        "workers": [dict(p._mapping) for p in people],
        "devices": [dict(d._mapping) for d in kit],
        "alarms": alarms,
    }


def worker_page(db: Engine, worker: str) -> dict[str, Any] | None:
    """The worker, their grids, last position and the alarms they handled."""
    with db.connect() as conn:
        info = _one(
            conn,
            sa.select(
                workers.c.id, workers.c.name, workers.c.phone, workers.c.role, workers.c.community
            ).where(workers.c.id == worker),
        )
        if info is None:
            return None
        their = (
            conn.execute(
                sa.select(worker_grids.c.grid)
                .where(worker_grids.c.worker == worker)
                .order_by(worker_grids.c.rank)
            )
            .scalars()
            .all()
        )
        where = _one(conn, sa.select(positions).where(positions.c.worker == worker))
        a = lifecycle_alarms
        alarms = _alarms(conn, sa.or_(a.c.acknowledged_by == worker, a.c.resolved_by == worker))
    return {"worker": info, "grids": list(their), "position": where, "alarms": alarms}


def worker_choices(db: Engine) -> list[tuple[str, str]]:
    """(id, name) of everyone who can be paged, for the reassign form."""
    with db.connect() as conn:
        rows = conn.execute(sa.select(workers.c.id, workers.c.name).order_by(workers.c.id))
        return [(r.id, r.name) for r in rows]


def filter_lists(db: Engine) -> dict[str, list[tuple[str, str]]]:
    """The board's filters: communities, grids, device types, states as (value, label)."""
    with db.connect() as conn:
        comms = [(r.id, r.name_zh) for r in conn.execute(sa.select(communities))]
        grid_rows = [(r.id, r.name) for r in conn.execute(sa.select(grids.c.id, grids.c.name))]
        types = conn.execute(sa.select(devices.c.type).distinct()).scalars().all()
    states = [s.value for s in State if s is not State.RESOLVED]
    return {
        "community": sorted(comms),
        "grid": sorted(grid_rows),
        "type": [(t, t) for t in sorted(types)],
        "state": [(s, s) for s in states],
    }
