"""One alarm in full: its lifecycle row, the device and place, and the audit timeline —
the rules' and people's events, every message sent (to whom, on which channel), the brigade's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.ingest.devices import devices
from cloud.lifecycle.reports import hazard_reports
from cloud.lifecycle.rule_alarms import alarm_events
from cloud.lifecycle.tables import lifecycle_alarms, outbox
from cloud.registry.tables import device_locations, workers

SHOWN_DETAIL = (
    "channel",
    "note",
    "outcome",
    "workers",
    "target",
    "from",
    "brigade_name",
    "status",
    "answer",
    "reason",
    "eta_s",
    "incident",
    "disposition",
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the timeline."""

    ts: float
    kind: str  # an audit kind (raised, acknowledged, …) or "message"
    actor: str
    facts: tuple[tuple[str, str], ...]  # (name, value) shown beside it

    @property
    def brigade(self) -> bool:
        return self.actor.startswith("brigade:")


@dataclass(frozen=True, slots=True)
class AlarmDetail:
    """Everything the detail page shows."""

    alarm: dict[str, Any]
    device: dict[str, Any] | None
    place: dict[str, Any] | None
    timeline: list[Entry]
    report: dict[str, Any] | None = None  # the worker's hazard report, when it is one


def _facts(detail: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    out = []
    for key in SHOWN_DETAIL:
        value = detail.get(key)
        if value in (None, "", []):
            continue
        out.append((key, ", ".join(map(str, value)) if isinstance(value, list) else str(value)))
    return tuple(out)


def _events(conn: sa.Connection, alarm_id: int) -> list[Entry]:
    e = alarm_events
    rows = conn.execute(sa.select(e).where(e.c.alarm_id == alarm_id).order_by(e.c.id))
    out = []
    for r in rows:
        try:
            detail = json.loads(r.detail or "{}")
        except ValueError:
            detail = {}
        out.append(
            Entry(
                r.recorded_at, r.kind, r.actor, _facts(detail if isinstance(detail, dict) else {})
            )
        )
    return out


def _messages(conn: sa.Connection, alarm_id: int) -> list[Entry]:
    o, w = outbox, workers
    rows = conn.execute(
        sa.select(o.c.worker_id, o.c.channel, o.c.state, o.c.created_at, o.c.sent_at, w.c.name)
        .outerjoin(w, w.c.id == o.c.worker_id)
        .where(o.c.alarm_id == alarm_id)
    )
    return [
        Entry(
            r.sent_at or r.created_at,
            "message",
            r.worker_id,
            (("name", r.name or r.worker_id), ("channel", r.channel), ("status", r.state)),
        )
        for r in rows
    ]


def alarm_detail(db: Engine, alarm_id: int) -> AlarmDetail | None:
    """The alarm *alarm_id* in full, or None when the lifecycle does not know it."""
    a = lifecycle_alarms
    with db.connect() as conn:
        row = conn.execute(sa.select(a).where(a.c.alarm_id == alarm_id)).first()
        if row is None:
            return None
        dev = place = None
        if row.device is not None:
            d = conn.execute(sa.select(devices).where(devices.c.device == row.device)).first()
            dev = dict(d._mapping) if d is not None else None
            loc = device_locations
            p = conn.execute(sa.select(loc).where(loc.c.device == row.device)).first()
            place = dict(p._mapping) if p is not None else None
        timeline = _events(conn, alarm_id) + _messages(conn, alarm_id)
        h = hazard_reports
        rep = conn.execute(sa.select(h).where(h.c.alarm_id == alarm_id)).first()
    timeline.sort(key=lambda e: e.ts)
    report = None
    if rep is not None:
        report = {**rep._mapping, "photos": len(json.loads(rep.photos or "[]"))}
    return AlarmDetail(dict(row._mapping), dev, place, timeline, report)
