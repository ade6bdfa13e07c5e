"""The devices the rules know: id, gateway, type, grid, building, community, heartbeat."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from rules.devices import DeviceInfo

metadata = sa.MetaData()

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("device", sa.String(64), primary_key=True),
    sa.Column("gateway", sa.String(64), nullable=False, index=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("grid", sa.String(64), nullable=False, default=""),
    sa.Column("building", sa.String(64), nullable=False, default=""),
    sa.Column("community", sa.String(64), nullable=False, default=""),
    sa.Column("heartbeat_s", sa.Float, nullable=False, default=60.0),
)


def upsert_devices(db: Engine, items: Iterable[DeviceInfo]) -> int:
    rows = [
        {
            "device": d.device,
            "gateway": d.gateway,
            "type": d.type,
            "grid": d.grid,
            "building": d.building,
            "community": d.community,
            "heartbeat_s": d.heartbeat_s,
        }
        for d in items
    ]
    with db.begin() as conn:
        for row in rows:  # portable upsert: registries are small and imported rarely
            if (
                conn.execute(
                    sa.update(devices).where(devices.c.device == row["device"]).values(row)
                ).rowcount
                == 0
            ):
                conn.execute(sa.insert(devices).values(row))
    return len(rows)


def load_devices(db: Engine) -> dict[str, DeviceInfo]:
    with db.connect() as conn:
        return {
            r.device: DeviceInfo(
                r.device, r.gateway, r.type, r.grid, r.building, r.community, r.heartbeat_s
            )
            for r in conn.execute(sa.select(devices))
        }
