"""What the map draws: grid polygons shaded by open alarms, devices coloured by state, open
alarms at their device, workers at their last position.

A device's state comes from its open alarms: ``alarm`` for any alarm about the world (fire,
flood, …), ``fault`` for a device-fault alarm, ``offline`` while its gateway is offline;
else ``ok``. The alarm's declared category decides, never its rule id.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.console.board import SEVERITY_RANK, BoardItem, open_alarms
from cloud.ingest.devices import devices
from cloud.registry.tables import device_locations, grids, positions, workers

FAULT_CATEGORIES = frozenset({"device_fault"})
OFFLINE_CATEGORIES = frozenset({"gateway"})
NOT_ALARMS = FAULT_CATEGORIES | OFFLINE_CATEGORIES | {"test"}


def device_states(items: list[BoardItem], gateway_of: dict[str, str]) -> dict[str, str]:
    """device id -> ok | alarm | offline | fault, for every device in *gateway_of*."""
    down = {i.gateway for i in items if i.category in OFFLINE_CATEGORIES}
    states = {d: ("offline" if gw in down else "ok") for d, gw in gateway_of.items()}
    for i in items:
        if i.device is None or i.device not in states:
            continue
        if i.category in FAULT_CATEGORIES and states[i.device] == "ok":
            states[i.device] = "fault"
        elif i.category not in NOT_ALARMS:
            states[i.device] = "alarm"
    return states


def _grids(conn: sa.Connection, items: list[BoardItem]) -> list[dict[str, Any]]:
    count: dict[str, int] = defaultdict(int)
    worst: dict[str, int] = defaultdict(lambda: -1)
    for i in items:
        count[i.grid] += 1
        worst[i.grid] = max(worst[i.grid], i.rank)
    rows = conn.execute(sa.select(grids.c.id, grids.c.community, grids.c.name, grids.c.geometry))
    return [
        {
            "id": r.id,
            "community": r.community,
            "name": r.name,
            "geometry": json.loads(r.geometry),
            "open": count.get(r.id, 0),
            "worst": worst.get(r.id, -1),
        }
        for r in rows
    ]


def map_data(db: Engine, now: float) -> dict[str, Any]:
    """The map's JSON: grids, devices ``[id, lat, lon, type, state]``, alarms, workers."""
    items = open_alarms(db, now)
    d, loc = devices, device_locations
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(d.c.device, d.c.gateway, d.c.type, loc.c.lat, loc.c.lon).join(
                loc, loc.c.device == d.c.device
            )
        ).all()
        grid_list = _grids(conn, items)
        people = conn.execute(
            sa.select(
                positions.c.worker, positions.c.lat, positions.c.lon, positions.c.ts, workers.c.name
            ).join(workers, workers.c.id == positions.c.worker)
        ).all()
    states = device_states(items, {r.device: r.gateway for r in rows})
    where = {r.device: (r.lat, r.lon) for r in rows}
    return {
        "grids": grid_list,
        "devices": [[r.device, r.lat, r.lon, r.type, states[r.device]] for r in rows],
        "alarms": [
            {
                "id": i.id,
                "severity": i.severity,
                "title_zh": i.title_zh,
                "title_en": i.title_en,
                "lat": spot[0],
                "lon": spot[1],
                "overdue": i.overdue,
            }
            for i in items
            if (spot := i.where or where.get(i.device or "")) is not None
        ],
        "workers": [[p.worker, p.name, p.lat, p.lon, p.ts] for p in people],
        "severity_rank": SEVERITY_RANK,
    }
