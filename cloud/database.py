"""The cloud database: one SQLAlchemy engine (SQLite by default, PostgreSQL by URL), its tables.

Each stage owns its tables (ingest: devices and checkpoints; lifecycle: alarms and their
audit); this module opens the engine and creates them all, so every entry point sees one
schema whichever part it starts from.
"""

from __future__ import annotations

import contextlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.dbsession import engine_options
from cloud.ingest import checkpoint, devices
from cloud.lifecycle import rule_alarms


def connect(url: str) -> Engine:
    """The engine; SQLite gets WAL (readers never block the writer)."""
    engine = sa.create_engine(url, future=True, **engine_options(url))
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


SETUP_LOCK = 0x67726964  # "grid": the advisory lock of schema changes and imports at start


class SetupLock:
    """Held from creation until ``close()`` while a worker creates tables and imports its
    registry.

    Several workers of one PostgreSQL deployment start together; creating the same tables or
    upserting the same devices at once would fail on the unique keys, so they take turns on
    a session advisory lock (released by the server if the worker dies). SQLite: nothing."""

    def __init__(self, url: str) -> None:
        self._engine: Engine | None = None
        self._conn: sa.Connection | None = None
        if url.startswith("postgresql"):
            # no transaction around it: a session idle in one is ended after a few seconds
            self._engine = connect(url).execution_options(isolation_level="AUTOCOMMIT")
            self._conn = self._engine.connect()
            self._conn.exec_driver_sql(f"SELECT pg_advisory_lock({SETUP_LOCK})")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(sa.exc.DBAPIError):
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({SETUP_LOCK})")
        conn.close()
        if self._engine is not None:
            self._engine.dispose()
