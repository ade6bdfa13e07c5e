"""Alarms as the rules raise them, and the append-only ``alarm_events`` history.

Ingest writes rule transitions here inside its checkpoint transaction; the lifecycle reads
them and appends people's actions to the same history (one history per alarm).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloud.lifecycle.columns import add_on_open
from rules.meaning import Notify

metadata = sa.MetaData()

alarms = sa.Table(
    "alarms",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(160), nullable=False),
    sa.Column("rule_id", sa.String(64), nullable=False),
    sa.Column("device", sa.String(64), nullable=True, index=True),
    sa.Column("gateway", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # open | cleared (people: lifecycle_alarms)
    sa.Column("title_en", sa.String(200), nullable=False),
    sa.Column("title_zh", sa.String(200), nullable=False),
    # what the rule said it means, kept from the raise: a later rule set does not re-read
    # old alarms. NULL category: raised before rules declared one (never guessed from the id);
    # such alarms were paged, hence the default of notify.
    sa.Column("category", sa.String(16), nullable=True),
    sa.Column("notify", sa.String(8), nullable=False, server_default="page"),
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

add_on_open(alarms, "category", "notify")


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
    category: str  # rules.Category: what the alarm is about
    notify: str  # rules.Notify: page, summary or board
    value: float | None
    clears: str
    detail: dict[str, Any]


def apply_change(conn: Connection, c: AlarmChange, now: float) -> None:
    """Store one rule transition: the alarm row and its history event."""
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
                category=c.category,
                notify=c.notify,
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
        lifted = [n.value for n in Notify(c.notify).less_urgent()]  # the correlation's notify
        notify = sa.case((alarms.c.notify.in_(lifted), c.notify), else_=alarms.c.notify)
        conn.execute(
            sa.update(alarms)
            .where(alarms.c.id == alarm_id)
            .values(confirmed=True, notify=notify, updated_ts=c.ts)
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
