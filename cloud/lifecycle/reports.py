"""Hazards a grid worker finds and reports from the phone page (长安e格: the worker finds it,
the centre relays, the worker confirms the fix).

A report becomes an alarm of category ``report`` in the same tables as a sensor's, so the
board, dispatch, escalation, audit and KPIs treat it alike; its key is ``report/<id>`` and it
has no device. The report id comes from the form the worker opened, so a form sent twice
(a double tap, a retry on a bad network) makes one report. When the alarm is resolved the
reporter is told, through the outbox (durable, once).
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cloud.lifecycle.audit import Event, append
from cloud.lifecycle.config import LifecycleConfig
from cloud.lifecycle.model import Notice, NoticeKind, Target
from cloud.lifecycle.outbox import enqueue_notice
from cloud.lifecycle.protocols import Renderer
from cloud.lifecycle.rule_alarms import alarm_events, alarms
from cloud.lifecycle.tables import metadata
from cloud.lifecycle.views import to_view
from rules.meaning import Category, Notify

REPORT_ID = re.compile(r"^[A-Za-z0-9_-]{16,40}$")
SEVERITY = "warning"


class HazardKind(enum.StrEnum):
    """What the worker found."""

    BLOCKED_EXIT = "blocked_exit"
    INDOOR_CHARGING = "indoor_charging"
    DAMAGED_MANHOLE = "damaged_manhole"
    FLOODING = "flooding"
    OTHER = "other"


TITLES: dict[HazardKind, tuple[str, str]] = {  # (zh-CN, en)
    HazardKind.BLOCKED_EXIT: ("消防通道堵塞", "Blocked fire exit"),
    HazardKind.INDOOR_CHARGING: ("电动车室内充电", "E-bike charging indoors"),
    HazardKind.DAMAGED_MANHOLE: ("井盖破损", "Damaged manhole cover"),
    HazardKind.FLOODING: ("路面积水", "Flooding"),
    HazardKind.OTHER: ("其他隐患", "Other hazard"),
}

hazard_reports = sa.Table(
    "hazard_reports",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),  # from the form: one per form sent
    sa.Column("alarm_id", sa.Integer, nullable=False, index=True),
    sa.Column("reporter", sa.String(64), nullable=False),
    sa.Column("locale", sa.String(16), nullable=False),  # the reporter's, for the closing word
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("lat", sa.Float, nullable=True),
    sa.Column("lon", sa.Float, nullable=True),
    sa.Column("grid", sa.String(64), nullable=False, default=""),
    sa.Column("community", sa.String(64), nullable=False, default=""),
    sa.Column("photos", sa.Text, nullable=False, default="[]"),  # JSON list of stored names
    sa.Column("created_at", sa.Float, nullable=False),
)


@dataclass(frozen=True, slots=True)
class HazardReport:
    """One report as the worker sent it (photos already stored, EXIF stripped)."""

    report_id: str
    reporter: str
    kind: HazardKind
    note: str = ""
    lat: float | None = None
    lon: float | None = None
    grid: str = ""
    community: str = ""
    photos: tuple[str, ...] = ()
    locale: str = "zh-CN"

    def __post_init__(self) -> None:
        if not REPORT_ID.fullmatch(self.report_id):
            raise ValueError(f"report id {self.report_id!r} is not 16-40 URL-safe characters")


def existing(conn: Connection, report_id: str) -> int | None:
    """The alarm of a report sent before, or None."""
    got = conn.execute(
        sa.select(hazard_reports.c.alarm_id).where(hazard_reports.c.id == report_id)
    ).scalar()
    return int(got) if got is not None else None


def store(conn: Connection, r: HazardReport, now: float) -> Any:
    """The report's alarm row (open, as a rule would raise it) and its report row."""
    zh, en = TITLES[r.kind]
    key = f"report/{r.report_id}"
    alarm_id = conn.execute(
        sa.insert(alarms).values(
            key=key, rule_id=f"hazard.{r.kind.value}", device=None, gateway="", severity=SEVERITY,
            state="open", title_en=en, title_zh=zh, category=Category.REPORT.value,
            notify=Notify.PAGE.value, clears="manual", confirmed=False, raised_ts=now,
            updated_ts=now,
        )
    ).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
    conn.execute(
        sa.insert(hazard_reports).values(
            id=r.report_id, alarm_id=alarm_id, reporter=r.reporter, locale=r.locale,
            kind=r.kind.value,
            note=r.note, lat=r.lat, lon=r.lon, grid=r.grid, community=r.community,
            photos=json.dumps(list(r.photos)), created_at=now,
        )
    )  # fmt: skip
    detail = {"report": r.report_id, "kind": r.kind.value, "note": r.note, "lat": r.lat,
              "lon": r.lon, "grid": r.grid, "photos": len(r.photos)}  # fmt: skip
    conn.execute(
        sa.insert(alarm_events).values(
            alarm_id=alarm_id, key=key, kind="raise", severity=SEVERITY, ts=now, recorded_at=now,
            actor=r.reporter[:64], value=None,
            detail=json.dumps(detail, sort_keys=True, ensure_ascii=False),
        )
    )  # fmt: skip
    return conn.execute(sa.select(alarms).where(alarms.c.id == alarm_id)).one()


def report_of(conn: Connection, alarm_id: int) -> Any:
    """The report behind an alarm, or None for a sensor's alarm."""
    return conn.execute(
        sa.select(hazard_reports).where(hazard_reports.c.alarm_id == alarm_id)
    ).first()


def tell_reporter(
    conn: Connection, row: Any, config: LifecycleConfig, renderer: Renderer, now: float
) -> None:
    """The alarm of a report was resolved: a notice to the reporter, in the language of the
    report, once (the outbox refuses the same message id again)."""
    report = report_of(conn, row.alarm_id)
    if report is None:
        return
    target = Target(report.reporter, locale=report.locale)
    title = row.title_zh if report.locale == "zh-CN" else row.title_en
    notice = Notice(NoticeKind.REPORT_CLOSED, source=title, status=row.outcome or "")
    mid = f"a{row.alarm_id}-closed-{report.reporter}"
    rendered = renderer.notice(to_view(row), target, notice)
    if enqueue_notice(conn, message_id=mid, alarm_id=row.alarm_id, target=target,
                      rendered=rendered, channels=config.outbox.channels, now=now):  # fmt: skip
        append(conn, [Event(row.alarm_id, row.key, row.severity, "reporter_told", "lifecycle",
                            now, {"worker": report.reporter, "message": mid})])  # fmt: skip
