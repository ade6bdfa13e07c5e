"""Append-only audit events in the shared ``alarm_events`` log (who, when, channel, note)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cloud.lifecycle.rule_alarms import alarm_events


@dataclass(frozen=True, slots=True)
class Event:
    alarm_id: int
    key: str
    severity: str
    kind: str  # <= 16 characters (the column's width)
    actor: str
    ts: float
    detail: dict[str, Any] = field(default_factory=dict)


def append(conn: Connection, events: Iterable[Event]) -> None:
    rows = [
        {
            "alarm_id": e.alarm_id,
            "key": e.key,
            "kind": e.kind,
            "severity": e.severity,
            "ts": e.ts,
            "recorded_at": e.ts,
            "actor": e.actor[:64],
            "value": None,
            "detail": json.dumps(e.detail, sort_keys=True, ensure_ascii=False, default=str),
        }
        for e in events
    ]
    if rows:
        conn.execute(sa.insert(alarm_events), rows)
