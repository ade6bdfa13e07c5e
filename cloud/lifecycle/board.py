"""The alarm board: every alarm with where it stands in its lifecycle, read-only.

An alarm is *tracked* once the lifecycle has adopted it (a cloud with dispatch does at once);
until then — or in a cloud without dispatch — only the rules' view exists: open or cleared.

``BoardRow.as_json()`` is the stable shape of ``gridalarm cloud alarms --json`` (``alarms``)::

    id, key, rule_id, device, gateway, severity, title_zh, title_en, confirmed
    category         what the rule says it is about (null: raised before rules declared it)
    notify           how urgently people are told: page | summary | board
    raised_ts        event time the rules raised it (float, Unix seconds)
    tracked          false: the lifecycle has not adopted it (state is raised or cleared)
    state            raised | notified | escalated | acknowledged | on_site | resolved,
                     or cleared (untracked, closed by its sensor)
    outcome          null, or when resolved: real | false_alarm | device_fault | test
    since            when it entered ``state`` (Unix seconds)
    holder           who has it now: acknowledged_by while acknowledged / on site,
                     resolved_by once resolved, else null
    acknowledged_by, acknowledged_at, on_site_at, resolved_by, resolved_at   (null until then)
    overdue          an SLA was breached (sticky)

Fields are only ever added; none is renamed or changes meaning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloud.lifecycle.model import OPEN_STATES, State
from cloud.lifecycle.rule_alarms import alarm_events, alarms
from cloud.lifecycle.tables import lifecycle_alarms

CLEARED = "cleared"  # the state of an untracked alarm its sensor closed
# audit kinds after which an alarm is notified / escalated (the step, or a climb)
_WAITING_SINCE = ("notified", "escalated", "ack_timeout", "need_help")


@dataclass(frozen=True, slots=True)
class BoardRow:
    """One alarm on the board (see the module docstring for each field)."""

    id: int
    key: str
    rule_id: str
    device: str | None
    gateway: str
    severity: str
    title_zh: str
    title_en: str
    confirmed: bool
    category: str | None
    notify: str
    raised_ts: float
    tracked: bool
    state: str
    outcome: str | None
    since: float
    holder: str | None
    acknowledged_by: str | None
    acknowledged_at: float | None
    on_site_at: float | None
    resolved_by: str | None
    resolved_at: float | None
    overdue: bool

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def list_board(db: Engine, *, open_only: bool = False, limit: int = 200) -> list[BoardRow]:
    """Alarms newest first, with their lifecycle state; *open_only*: not resolved or cleared."""
    with db.connect() as conn:
        if not sa.inspect(conn).has_table(lifecycle_alarms.name):
            return _untracked(conn, open_only, limit)  # a cloud that never ran the lifecycle
        return [_row(r) for r in conn.execute(_query(open_only, limit))]


def _query(open_only: bool, limit: int) -> sa.Select[Any]:
    a, life, ev = alarms, lifecycle_alarms, alarm_events
    waiting_since = (
        sa.select(sa.func.max(ev.c.ts))
        .where(ev.c.alarm_id == a.c.id, ev.c.kind.in_(_WAITING_SINCE))
        .scalar_subquery()
    )
    query = (
        sa.select(
            a,
            life.c.alarm_id.label("tracked_id"),
            life.c.state.label("life_state"),
            *(life.c[name] for name in _LIFE_COLUMNS),
            waiting_since.label("waiting_since"),
        )
        .select_from(a.outerjoin(life, life.c.alarm_id == a.c.id))
        .order_by(a.c.raised_ts.desc(), a.c.id.desc())
        .limit(limit)
    )
    if open_only:
        query = query.where(
            sa.or_(
                sa.and_(life.c.alarm_id.is_(None), a.c.state == "open"),
                life.c.state.in_([s.value for s in OPEN_STATES]),
            )
        )
    return query


_LIFE_COLUMNS = (
    "outcome", "raised_at", "acknowledged_at", "acknowledged_by", "on_site_at",
    "resolved_at", "resolved_by", "overdue",
)  # fmt: skip


def _row(r: Any) -> BoardRow:
    if r.tracked_id is None:
        return _untracked_row(r)
    state = State(r.life_state)
    since = {
        State.RAISED: r.raised_at,
        State.NOTIFIED: r.waiting_since,
        State.ESCALATED: r.waiting_since,
        State.ACKNOWLEDGED: r.acknowledged_at,
        State.ON_SITE: r.on_site_at,
        State.RESOLVED: r.resolved_at,
    }[state]
    holder = (
        r.resolved_by
        if state is State.RESOLVED
        else r.acknowledged_by
        if state in (State.ACKNOWLEDGED, State.ON_SITE)
        else None
    )
    return BoardRow(
        **_rule_fields(r), tracked=True, state=state.value, outcome=r.outcome,
        since=since if since is not None else r.raised_at, holder=holder,
        acknowledged_by=r.acknowledged_by, acknowledged_at=r.acknowledged_at,
        on_site_at=r.on_site_at, resolved_by=r.resolved_by, resolved_at=r.resolved_at,
        overdue=bool(r.overdue),
    )  # fmt: skip


def _untracked_row(r: Any) -> BoardRow:
    cleared = r.state != "open"
    return BoardRow(
        **_rule_fields(r), tracked=False, state=CLEARED if cleared else State.RAISED.value,
        outcome=None, since=(r.cleared_ts or r.updated_ts) if cleared else r.raised_ts,
        holder=None, acknowledged_by=None, acknowledged_at=None, on_site_at=None,
        resolved_by=None, resolved_at=None, overdue=False,
    )  # fmt: skip


def _rule_fields(r: Any) -> dict[str, Any]:
    return {
        "id": r.id, "key": r.key, "rule_id": r.rule_id, "device": r.device,
        "gateway": r.gateway, "severity": r.severity, "title_zh": r.title_zh,
        "title_en": r.title_en, "confirmed": bool(r.confirmed), "category": r.category,
        "notify": r.notify, "raised_ts": r.raised_ts,
    }  # fmt: skip


def _untracked(conn: Connection, open_only: bool, limit: int) -> list[BoardRow]:
    query = sa.select(alarms).order_by(alarms.c.raised_ts.desc(), alarms.c.id.desc()).limit(limit)
    if open_only:
        query = query.where(alarms.c.state == "open")
    return [_untracked_row(r) for r in conn.execute(query)]
