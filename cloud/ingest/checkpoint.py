"""Checkpoints: what ingest has handled, stored so a restart resumes exactly where it stopped.

Everything one checkpoint covers — alarm changes, the dedup and engine state — is written in
ONE transaction, and only then are the covered MQTT messages acknowledged: a kill -9 at any
point either keeps all of a checkpoint or none of it, and the broker redelivers the rest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

from cloud.lifecycle.rule_alarms import AlarmChange, apply_change

metadata = sa.MetaData()
_encoder = msgspec.json.Encoder()

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


def read_checkpoint(db: Engine, name: str) -> Any | None:
    with db.connect() as conn:
        row = conn.execute(sa.select(checkpoints.c.value).where(checkpoints.c.name == name)).first()
    return json.loads(row[0]) if row else None


def commit_checkpoint(
    db: Engine,
    changes: Sequence[AlarmChange],
    states: dict[str, Any],
    device_states: dict[str, Any] | None = None,
    fence: Callable[[Connection], None] | None = None,
) -> None:
    """Store alarm changes, named state snapshots and per-device states in one transaction.

    *fence* runs first in that transaction and raises when this worker no longer owns what it
    is writing for (a partition taken over while it was paused): then nothing is written."""
    now = time.time()
    with db.begin() as conn:
        if fence is not None:
            fence(conn)
        for change in changes:
            apply_change(conn, change, now)
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


def read_engine_state(
    db: Engine, base_name: str = "engine_base", devices: Collection[str] | None = None
) -> dict[str, Any] | None:
    """The engine snapshot assembled from the base checkpoint and the per-device rows (only
    *devices*' rows when given: a partition's own, read by key rather than all of them
    parsed and filtered — a takeover restores many partitions at once)."""
    base = read_checkpoint(db, base_name)
    if base is None:
        return None
    with db.connect() as conn:
        if devices is None:
            rows = conn.execute(sa.select(engine_devices)).all()
        else:
            wanted, rows = sorted(devices), []
            for i in range(0, len(wanted), 1000):
                chunk = wanted[i : i + 1000]
                query = sa.select(engine_devices).where(engine_devices.c.device.in_(chunk))
                rows.extend(conn.execute(query).all())
    return {**base, "devices": {r.device: json.loads(r.state) for r in rows}}


def _json(value: Any) -> str:
    return _encoder.encode(value).decode()


def _put_checkpoint(conn: Connection, name: str, value: str, now: float) -> None:
    updated = conn.execute(
        sa.update(checkpoints).where(checkpoints.c.name == name).values(value=value, updated_at=now)
    ).rowcount
    if not updated:
        conn.execute(sa.insert(checkpoints).values(name=name, value=value, updated_at=now))
