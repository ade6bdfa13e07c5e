"""The numbers leaders ask for, as tables that render as HTML and export as CSV.

Days are the street office's (UTC+8). Times to acknowledge and to resolve count from when the
cloud knew of the alarm; percentiles are nearest-rank.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.console.board import open_alarms
from cloud.console.mapdata import device_states
from cloud.ingest.devices import devices
from cloud.lifecycle.reports import hazard_reports
from cloud.lifecycle.tables import lifecycle_alarms
from cloud.registry import load_registry, shift_covers
from cloud.registry.tables import communities, grids

CHINA_TZ = timezone(timedelta(hours=8), "CST")
DAYS = 14
Cell = str | int | float


@dataclass(frozen=True, slots=True)
class KpiTable:
    """One table: its id (the CSV's name), titles and columns in both languages, rows."""

    key: str
    title_zh: str
    title_en: str
    columns: tuple[tuple[str, str], ...]  # (zh, en)
    rows: list[list[Cell]]


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone(CHINA_TZ).strftime("%Y-%m-%d")


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of *values* (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _rows(db: Engine, since: float) -> list[Any]:
    """Alarms raised or resolved since *since*, placed by their device or their report."""
    a, d, h, g, c = lifecycle_alarms, devices, hazard_reports, grids, communities
    grid = sa.func.coalesce(d.c.grid, h.c.grid)
    community = sa.func.coalesce(d.c.community, h.c.community)
    query = (
        sa.select(
            a,
            grid.label("grid"),
            community.label("community"),
            g.c.name.label("grid_name"),
            c.c.name_zh.label("community_name"),
        )
        .select_from(
            a.outerjoin(d, d.c.device == a.c.device)
            .outerjoin(h, h.c.alarm_id == a.c.alarm_id)
            .outerjoin(g, g.c.id == grid)
            .outerjoin(c, c.c.id == community)
        )
        .where(sa.or_(a.c.raised_at >= since, a.c.resolved_at >= since))
    )
    with db.connect() as conn:
        return list(conn.execute(query))


def per_day(rows: Iterable[Any], now: float) -> KpiTable:
    """发生数 / 完结数 / 超时数 for each of the last DAYS days, newest first."""
    days = [day_of(now - 86400 * i) for i in range(DAYS)]
    count: dict[str, list[int]] = {day: [0, 0, 0] for day in days}
    for r in rows:
        if (raised := count.get(day_of(r.raised_at))) is not None:
            raised[0] += 1
            raised[2] += int(bool(r.overdue))
        if r.resolved_at is not None and (closed := count.get(day_of(r.resolved_at))):
            closed[1] += 1
    return KpiTable(
        "per_day",
        "每日统计",
        "Per day",
        (("日期", "day"), ("发生数", "raised"), ("完结数", "closed"), ("超时数", "overdue")),
        [[day, *count[day]] for day in days],
    )


def _times(rows: Iterable[Any], key: str) -> KpiTable:
    ack: dict[str, list[float]] = defaultdict(list)
    res: dict[str, list[float]] = defaultdict(list)
    names: dict[str, str] = {}
    for r in rows:
        where = getattr(r, key) or "-"
        names[where] = getattr(r, f"{key}_name", None) or ""
        if r.acknowledged_at is not None:
            ack[where].append(r.acknowledged_at - r.raised_at)
        if r.resolved_at is not None:
            res[where].append(r.resolved_at - r.raised_at)
    out: list[list[Cell]] = []
    for where in sorted(set(ack) | set(res)):
        cells = [
            percentile(ack[where], 50),
            percentile(ack[where], 90),
            percentile(res[where], 50),
            percentile(res[where], 90),
        ]
        rounded = ("" if c is None else round(c, 1) for c in cells)
        out.append([where, names[where], len(res[where]), *rounded])
    zh, en = ("社区", "community") if key == "community" else ("网格", "grid")
    return KpiTable(
        f"times_by_{key}",
        f"处置时长（按{zh}，秒）",
        f"Handling times by {en} (s)",
        (
            (zh, en),
            ("名称", "name"),
            ("完结数", "closed"),
            ("接单 p50", "ack p50"),
            ("接单 p90", "ack p90"),
            ("完结 p50", "resolve p50"),
            ("完结 p90", "resolve p90"),
        ),
        out,
    )


def false_alarms(rows: Iterable[Any]) -> KpiTable:
    """Resolved alarms per device and the share that were false: the detectors to move."""
    total: dict[str, int] = defaultdict(int)
    false: dict[str, int] = defaultdict(int)
    for r in rows:
        if r.device is None or r.outcome is None:
            continue
        total[r.device] += 1
        false[r.device] += int(r.outcome == "false_alarm")
    ranked = sorted(total, key=lambda d: (-false[d], -false[d] / total[d], d))
    return KpiTable(
        "false_alarms",
        "误报率（按设备）",
        "False-alarm rate by device",
        (("设备", "device"), ("误报", "false"), ("完结", "resolved"), ("误报率", "rate")),
        [[d, false[d], total[d], round(false[d] / total[d], 2)] for d in ranked if false[d]],
    )


def unwell_devices(db: Engine, now: float) -> KpiTable:
    """Devices offline (their gateway is) or in fault now."""
    with db.connect() as conn:
        gateway_of = {r.device: r.gateway for r in conn.execute(sa.select(devices))}
    states = device_states(open_alarms(db, now), gateway_of)
    bad = sorted((d, s) for d, s in states.items() if s in ("offline", "fault"))
    return KpiTable(
        "devices_offline",
        "离线与故障设备",
        "Devices offline or in fault",
        (("设备", "device"), ("网关", "gateway"), ("状态", "state")),
        [[d, gateway_of[d], s] for d, s in bad],
    )


def on_duty(db: Engine, now: float) -> KpiTable:
    """Workers whose shift covers now."""
    registry = load_registry(db)
    covered = {s.worker for s in registry.shifts if shift_covers(s, now)}
    rows: list[list[Cell]] = [
        [w.id, w.name, w.role.value, w.community, " ".join(w.grids)]
        for w in registry.workers
        if w.id in covered
    ]
    return KpiTable(
        "on_duty",
        "在岗人员",
        "Workers on duty",
        (
            ("编号", "id"),
            ("姓名", "name"),
            ("角色", "role"),
            ("社区", "community"),
            ("网格", "grids"),
        ),
        rows,
    )


def all_kpis(db: Engine, now: float) -> list[KpiTable]:
    """Every KPI table, as the KPI page shows them."""
    rows = _rows(db, now - 86400 * DAYS)
    return [
        per_day(rows, now),
        _times(rows, "community"),
        _times(rows, "grid"),
        false_alarms(rows),
        unwell_devices(db, now),
        on_duty(db, now),
    ]
