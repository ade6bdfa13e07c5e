"""The registry's tables (SQLAlchemy Core), beside ingest's and the alarms', keyed by the same ids.

Device facts the rules use stay in ``devices`` (cloud.ingest.devices); where a device is and whom to
call live here, in ``registry_device_locations``, keyed by device id.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

communities = sa.Table(
    "registry_communities",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name_zh", sa.String(100), nullable=False),
    sa.Column("name_en", sa.String(100), nullable=False, default=""),
)

grids = sa.Table(
    "registry_grids",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("community", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("geometry", sa.Text, nullable=False),  # GeoJSON geometry
    sa.Column("centroid_lat", sa.Float, nullable=False),
    sa.Column("centroid_lon", sa.Float, nullable=False),
)

device_locations = sa.Table(
    "registry_device_locations",
    metadata,
    sa.Column("device", sa.String(64), primary_key=True),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("address", sa.String(200), nullable=False, default=""),
    sa.Column("building", sa.String(100), nullable=False, default=""),
    sa.Column("floor", sa.String(16), nullable=False, default=""),
    sa.Column("owner", sa.String(100), nullable=False, default=""),
    sa.Column("owner_phone", sa.String(20), nullable=False, default=""),
)

workers = sa.Table(
    "registry_workers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("phone", sa.String(20), nullable=False),
    sa.Column("locale", sa.String(8), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("community", sa.String(64), nullable=False, default="", index=True),
    sa.Column("push_subscription", sa.Text, nullable=True),
)

worker_grids = sa.Table(
    "registry_worker_grids",
    metadata,
    sa.Column("worker", sa.String(64), primary_key=True),
    sa.Column("rank", sa.Integer, primary_key=True),  # 0 = home grid
    sa.Column("grid", sa.String(64), nullable=False, index=True),
)

shifts = sa.Table(
    "registry_shifts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("worker", sa.String(64), nullable=False, index=True),
    sa.Column("weekdays", sa.String(32), nullable=False),  # "mon;tue;wed"
    sa.Column("start", sa.String(5), nullable=False),  # HH:MM local
    sa.Column("end", sa.String(5), nullable=False),  # HH:MM local, 24:00 allowed
    sa.Column("tz", sa.String(64), nullable=False),
)

positions = sa.Table(
    "registry_positions",
    metadata,
    sa.Column("worker", sa.String(64), primary_key=True),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
)

grid_supervisors = sa.Table(
    "registry_grid_supervisors",
    metadata,
    sa.Column("grid", sa.String(64), primary_key=True),
    sa.Column("worker", sa.String(64), nullable=False),
)

duty = sa.Table(  # one row per post; today only "commander"
    "registry_duty",
    metadata,
    sa.Column("post", sa.String(32), primary_key=True),
    sa.Column("worker", sa.String(64), nullable=False),
)


def create_registry_tables(engine: Engine) -> None:
    """Create the registry's tables if they are missing (idempotent)."""
    metadata.create_all(engine)
