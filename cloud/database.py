"""The cloud database: one SQLAlchemy engine (SQLite by default, PostgreSQL by URL), its tables.

Each stage owns its tables (ingest: devices and checkpoints; lifecycle: alarms and their
audit); this module opens the engine and creates them all, so every entry point sees one
schema whichever part it starts from.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.ingest import checkpoint, devices
from cloud.lifecycle import rule_alarms


def connect(url: str) -> Engine:
    """The engine; SQLite gets WAL (readers never block the writer)."""
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    return engine


def open_database(url: str) -> Engine:
    """Connect and create the ingest and alarm tables that do not exist yet."""
    engine = connect(url)
    for metadata in (devices.metadata, checkpoint.metadata, rule_alarms.metadata):
        metadata.create_all(engine)
    return engine
