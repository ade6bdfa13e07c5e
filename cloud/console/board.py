"""The board's read model: open alarms with where they are (community, grid, device type),
by severity then age; overdue when a deadline has passed or the lifecycle marked it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.ingest.devices import devices
from cloud.lifecycle.model import OPEN_STATES, WAITING_STATES
from cloud.lifecycle.reports import hazard_reports
from cloud.lifecycle.tables import lifecycle_alarms
from cloud.registry.tables import communities, grids

SEVERITY_RANK = {"critical": 3, "danger": 2, "warning": 1, "info": 0}
_WAITING = frozenset(s.value for s in WAITING_STATES)


@dataclass(frozen=True, slots=True)
class BoardItem:
    """One open alarm as the board shows it."""

    id: int
    severity: str
    title_zh: str
    title_en: str
    category: str | None
    device: str | None
    gateway: str
    device_type: str
    community: str
    community_name: str
    grid: str
    grid_name: str
    state: str
    holder: str | None
    raised_at: float
    due_at: float  # the next deadline: acknowledge while waiting, else resolve
    overdue: bool
    where: tuple[float, float] | None = None  # a report's own position (devices have theirs)

    @property
    def rank(self) -> int:
        return SEVERITY_RANK.get(self.severity, 0)


def _query() -> sa.Select[Any]:
    """Open alarms placed by their device, or by the worker's report (which has no device)."""
    a, d, g, c, h = lifecycle_alarms, devices, grids, communities, hazard_reports
    grid = sa.func.coalesce(d.c.grid, h.c.grid)
    community = sa.func.coalesce(d.c.community, h.c.community)
    return (
        sa.select(
            a,
            d.c.type.label("device_type"),
            grid.label("grid_id"),
            community.label("community_id"),
            g.c.name.label("grid_name"),
            c.c.name_zh.label("community_zh"),
            h.c.lat.label("report_lat"),
            h.c.lon.label("report_lon"),
        )
        .select_from(
            a.outerjoin(d, d.c.device == a.c.device)
            .outerjoin(h, h.c.alarm_id == a.c.alarm_id)
            .outerjoin(g, g.c.id == grid)
            .outerjoin(c, c.c.id == community)
        )
        .where(a.c.state.in_([s.value for s in OPEN_STATES]))
    )


def _item(r: Any, now: float) -> BoardItem:
    waiting = r.state in _WAITING
    due = r.ack_due_at if waiting else r.resolve_due_at
    overdue = bool(r.overdue) or now > due or now > r.resolve_due_at
    return BoardItem(
        id=r.alarm_id,
        severity=r.severity,
        title_zh=r.title_zh,
        title_en=r.title_en,
        category=r.category,
        device=r.device,
        gateway=r.gateway,
        device_type=r.device_type or "",
        community=r.community_id or "",
        community_name=r.community_zh or r.community_id or "",
        grid=r.grid_id or "",
        grid_name=r.grid_name or r.grid_id or "",
        state=r.state,
        holder=r.acknowledged_by,
        raised_at=r.raised_at,
        due_at=due,
        overdue=overdue,
        where=(r.report_lat, r.report_lon) if r.report_lat is not None else None,
    )


def open_alarms(db: Engine, now: float) -> list[BoardItem]:
    """Every open alarm, most severe first, then oldest first."""
    with db.connect() as conn:
        items = [_item(r, now) for r in conn.execute(_query())]
    items.sort(key=lambda i: (-i.rank, i.raised_at, i.id))
    return items


def filter_choices(items: list[BoardItem]) -> dict[str, list[tuple[str, str]]]:
    """The values each filter offers: (value, label) pairs, from the alarms on the board."""
    out: dict[str, dict[str, str]] = {"community": {}, "grid": {}, "type": {}, "state": {}}
    for i in items:
        out["community"][i.community] = i.community_name
        out["grid"][i.grid] = i.grid_name
        out["type"][i.device_type] = i.device_type
        out["state"][i.state] = i.state
    return {k: sorted(v.items()) for k, v in out.items()}
