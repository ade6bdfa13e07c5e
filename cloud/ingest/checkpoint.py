"""Durable cloud state: registry, alarms, the append-only alarm event log, checkpoints.

SQLAlchemy Core (SQLite by default, PostgreSQL URL accepted). Everything one checkpoint
covers — alarm events, alarm rows, the dedup and engine state — is written in ONE
transaction, and only then are the covered MQTT messages acknowledged: a kill -9 at any
point either keeps all of a checkpoint or none of it, and the broker redelivers the rest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

from rules.devices import DeviceInfo

metadata = sa.MetaData()
_encoder = msgspec.json.Encoder()

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

alarms = sa.Table(
    "alarms",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(160), nullable=False),
    sa.Column("rule_id", sa.String(64), nullable=False),
    sa.Column("device", sa.String(64), nullable=True, index=True),
    sa.Column("gateway", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # open | cleared (issue 4 adds more)
    sa.Column("title_en", sa.String(200), nullable=False),
    sa.Column("title_zh", sa.String(200), nullable=False),
    sa.Column("clears", sa.String(8), nullable=False),
    sa.Column("confirmed", sa.Boolean, nullable=False, default=False),
    sa.Column("raised_ts", sa.Float, nullable=False),
    sa.Column("updated_ts", sa.Float, nullable=False),
    sa.Column("cleared_ts", sa.Float, nullable=True),
    # at most one open alarm per (device, rule): enforced by the database too
    sa.Index(
        "one_open_alarm_per_key",
        "key",
        unique=True,
        sqlite_where=sa.text("state = 'open'"),
        postgresql_where=sa.text("state = 'open'"),
    ),
)

alarm_events = sa.Table(
    "alarm_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alarm_id", sa.Integer, nullable=True, index=True),
    sa.Column("key", sa.String(160), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),  # event time of the decision
    sa.Column("recorded_at", sa.Float, nullable=False),  # wall time it was stored
    sa.Column("actor", sa.String(64), nullable=False, default="rules"),  # who
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("detail", sa.Text, nullable=False, default="{}"),
)

# per-device rule-engine state: a checkpoint rewrites only the devices it touched
engine_devices = sa.Table(
    "engine_devices",
    metadata,
    sa.Column("device", sa.String(64), primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """One rule transition to store (mirrors rules.Transition without importing its enum)."""

    kind: str
    key: str
    rule_id: str
    device: str | None
    gateway: str
    severity: str
    ts: float
    title_en: str
    title_zh: str
    value: float | None
    clears: str
    detail: dict[str, Any]


def open_database(url: str) -> Engine:
    """Create the engine and the tables; SQLite gets WAL (readers never block the writer)."""
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    metadata.create_all(engine)
    return engine


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


def read_checkpoint(db: Engine, name: str) -> Any | None:
    with db.connect() as conn:
        row = conn.execute(sa.select(checkpoints.c.value).where(checkpoints.c.name == name)).first()
    return json.loads(row[0]) if row else None


def commit_checkpoint(
    db: Engine,
    changes: Sequence[AlarmChange],
    states: dict[str, Any],
    device_states: dict[str, Any] | None = None,
) -> None:
    """Store alarm changes, named state snapshots and per-device states in one transaction."""
    now = time.time()
    with db.begin() as conn:
        for change in changes:
            _apply(conn, change, now)
        for name, value in states.items():
            _put_checkpoint(conn, name, _json(value), now)
        if device_states:
            _upsert_device_states(conn, device_states)


def _upsert_device_states(conn: Connection, device_states: dict[str, Any]) -> None:
    rows = [
        {"device": d, "state": json.dumps(s, separators=(",", ":"))}
        for d, s in device_states.items()
    ]
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        module = sqlite_dialect if dialect == "sqlite" else postgresql_dialect
        stmt = module.insert(engine_devices)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["device"], set_={"state": stmt.excluded.state}
            ),
            rows,
        )
        return
    for row in rows:  # any other database: portable, slower
        if not conn.execute(
            sa.update(engine_devices)
            .where(engine_devices.c.device == row["device"])
            .values(state=row["state"])
        ).rowcount:
            conn.execute(sa.insert(engine_devices).values(row))


def read_engine_state(db: Engine) -> dict[str, Any] | None:
    """The engine snapshot assembled from the base checkpoint and the per-device rows."""
    base = read_checkpoint(db, "engine_base")
    if base is None:
        return None
    with db.connect() as conn:
        devices = {r.device: json.loads(r.state) for r in conn.execute(sa.select(engine_devices))}
    return {**base, "devices": devices}


def _json(value: Any) -> str:
    return _encoder.encode(value).decode()


def _put_checkpoint(conn: Connection, name: str, value: str, now: float) -> None:
    updated = conn.execute(
        sa.update(checkpoints).where(checkpoints.c.name == name).values(value=value, updated_at=now)
    ).rowcount
    if not updated:
        conn.execute(sa.insert(checkpoints).values(name=name, value=value, updated_at=now))


def _apply(conn: Connection, c: AlarmChange, now: float) -> None:
    alarm_id = conn.execute(
        sa.select(alarms.c.id).where(alarms.c.key == c.key, alarms.c.state == "open")
    ).scalar()
    if c.kind == "raise" and alarm_id is None:
        alarm_id = conn.execute(
            sa.insert(alarms).values(
                key=c.key,
                rule_id=c.rule_id,
                device=c.device,
                gateway=c.gateway,
                severity=c.severity,
                state="open",
                title_en=c.title_en,
                title_zh=c.title_zh,
                clears=c.clears,
                confirmed=False,
                raised_ts=c.ts,
                updated_ts=c.ts,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
    elif alarm_id is not None and c.kind in ("upgrade", "downgrade"):
        conn.execute(
            sa.update(alarms)
            .where(alarms.c.id == alarm_id)
            .values(severity=c.severity, updated_ts=c.ts)
        )
    elif alarm_id is not None and c.kind == "confirm":
        conn.execute(
            sa.update(alarms).where(alarms.c.id == alarm_id).values(confirmed=True, updated_ts=c.ts)
        )
    elif alarm_id is not None and c.kind == "clear":
        conn.execute(
            sa.update(alarms)
            .where(alarms.c.id == alarm_id)
            .values(state="cleared", cleared_ts=c.ts, updated_ts=c.ts)
        )
    conn.execute(
        sa.insert(alarm_events).values(
            alarm_id=alarm_id,
            key=c.key,
            kind=c.kind,
            severity=c.severity,
            ts=c.ts,
            recorded_at=now,
            actor="rules",
            value=c.value,
            detail=json.dumps(c.detail, sort_keys=True, default=str),
        )
    )


def list_alarms(db: Engine, *, open_only: bool = False, limit: int = 200) -> list[dict[str, Any]]:
    query = sa.select(alarms).order_by(alarms.c.raised_ts.desc()).limit(limit)
    if open_only:
        query = query.where(alarms.c.state == "open")
    with db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def list_events(db: Engine, *, limit: int = 100_000) -> list[dict[str, Any]]:
    query = sa.select(alarm_events).order_by(alarm_events.c.id).limit(limit)
    with db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
