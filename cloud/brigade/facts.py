"""What a fire crew needs to know of an alarm, gathered from the cloud database in one place.

The brigade's JSON webhook, its CAP 1.2 messages, its API and its live stream all carry the
same ``BrigadeAlarm``; a message keeps the snapshot taken when its step happened, so a retry
sends the same bytes and an Update says what was true at that moment.
"""

from __future__ import annotations

import enum
import json
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from cloud.ingest.devices import devices
from cloud.lifecycle.model import FeedStep, Outcome, State
from cloud.lifecycle.rule_alarms import alarm_events, alarms
from cloud.lifecycle.tables import lifecycle_alarms
from cloud.registry.tables import communities, device_locations, grids, positions, workers

HISTORY_S = 90 * 86_400.0  # the detector's false alarms counted over this window


class Verification(enum.StrEnum):
    """How sure we are that it is real: only we know this, the brigade gets it at once."""

    UNVERIFIED = "unverified"
    SECOND_DETECTOR = "second_detector"  # a correlation confirmed it
    WORKER_ON_SITE = "worker_on_site"  # the grid worker on site confirmed it
    FALSE_ALARM = "false_alarm"


class MsgType(enum.StrEnum):
    """CAP's message types, which the JSON format uses too."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


def msg_type(step: FeedStep) -> MsgType:
    if step is FeedStep.RAISED:
        return MsgType.ALERT
    return MsgType.CANCEL if step is FeedStep.FALSE_ALARM else MsgType.UPDATE


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Place(_Model):
    """Where the alarm is."""

    address: str = Field(description="Street address, as people write it")
    building: str = Field(description="Building name or number, e.g. 7号楼")
    floor: str = Field(description="Floor as text: B1, 12, 1F; empty when unknown")
    community: str = Field(description="Community (社区) id")
    community_name: str = Field(description="Community name (zh-CN)")
    grid: str = Field(description="Grid (网格) id")
    grid_name: str = Field(description="Grid name")
    lat: float | None = Field(description="WGS-84 latitude; null when not surveyed")
    lon: float | None = Field(description="WGS-84 longitude; null when not surveyed")


class Detector(_Model):
    """The device that raised it, and its record."""

    device: str | None = Field(description="Device id; null for a gateway alarm")
    type: str = Field(description="Device type, e.g. smoke, heat")
    gateway: str = Field(description="Gateway the device reports through")
    false_alarms_90d: int = Field(description="Its alarms closed as false in the last 90 days")


class Contact(_Model):
    """A person to call: the owner or key holder of the premises."""

    name: str
    phone: str = Field(description="E.164")


class Responder(_Model):
    """The grid worker who took the alarm."""

    id: str
    name: str
    phone: str = Field(description="E.164")
    status: str = Field(description="en_route or on_site")
    lat: float | None = Field(description="Last known position (WGS-84)")
    lon: float | None = None
    position_at: float | None = Field(description="When that position was taken (epoch s)")


class BrigadeAlarm(_Model):
    """One fire-class alarm as a brigade's dispatcher sees it."""

    alarm_id: int
    rule_id: str
    category: str = Field(description="Always fire for brigades")
    severity: str
    title_zh: str
    title_en: str
    state: State
    outcome: Outcome | None = Field(description="Set once resolved")
    verification: Verification
    raised_at: float = Field(description="When the cloud knew (epoch s)")
    resolved_at: float | None
    place: Place
    detector: Detector
    responder: Responder | None = Field(description="The grid worker on the way or on site")
    owner: Contact | None = Field(description="Owner or key holder of the premises")


def gather(conn: Connection, alarm_id: int, now: float) -> BrigadeAlarm | None:
    """The alarm's facts now; None when the lifecycle does not know it."""
    la = lifecycle_alarms
    row = conn.execute(sa.select(la).where(la.c.alarm_id == alarm_id)).first()
    if row is None:
        return None
    dev = _device(conn, row.device)
    loc = _location(conn, row.device)
    owner = None
    if loc is not None and (loc.owner or loc.owner_phone):
        owner = Contact(name=loc.owner, phone=loc.owner_phone)
    return BrigadeAlarm(
        alarm_id=row.alarm_id, rule_id=row.rule_id, category=row.category or "",
        severity=row.severity, title_zh=row.title_zh, title_en=row.title_en,
        state=State(row.state), outcome=Outcome(row.outcome) if row.outcome else None,
        verification=_verification(conn, row), raised_at=row.raised_at,
        resolved_at=row.resolved_at, place=_place(conn, dev, loc),
        detector=Detector(
            device=row.device, type=dev.type if dev else "", gateway=row.gateway,
            false_alarms_90d=_false_alarms(conn, row.device, now),
        ),
        responder=_responder(conn, row), owner=owner,
    )  # fmt: skip


def area_of(conn: Connection, device: str | None) -> tuple[str, str]:
    """(community, grid) of a device; empty strings when unknown."""
    dev = _device(conn, device)
    return (dev.community, dev.grid) if dev is not None else ("", "")


def _device(conn: Connection, device: str | None) -> Any:
    if device is None:
        return None
    return conn.execute(sa.select(devices).where(devices.c.device == device)).first()


def _location(conn: Connection, device: str | None) -> Any:
    if device is None:
        return None
    d = device_locations
    return conn.execute(sa.select(d).where(d.c.device == device)).first()


def _place(conn: Connection, dev: Any, loc: Any) -> Place:
    community = dev.community if dev is not None else ""
    grid = dev.grid if dev is not None else ""
    cname = conn.execute(
        sa.select(communities.c.name_zh).where(communities.c.id == community)
    ).scalar()
    gname = conn.execute(sa.select(grids.c.name).where(grids.c.id == grid)).scalar()
    return Place(
        address=loc.address if loc is not None else "",
        building=(loc.building if loc is not None and loc.building else
                  dev.building if dev is not None else ""),
        floor=loc.floor if loc is not None else "",
        community=community, community_name=cname or "", grid=grid, grid_name=gname or "",
        lat=loc.lat if loc is not None else None, lon=loc.lon if loc is not None else None,
    )  # fmt: skip


def _verification(conn: Connection, row: Any) -> Verification:
    if row.outcome == Outcome.FALSE_ALARM:
        return Verification.FALSE_ALARM
    verified = conn.execute(
        sa.select(alarm_events.c.id).where(
            alarm_events.c.alarm_id == row.alarm_id, alarm_events.c.kind == "verified"
        )
    ).first()
    if verified is not None:
        return Verification.WORKER_ON_SITE
    confirmed = conn.execute(
        sa.select(alarms.c.confirmed).where(alarms.c.id == row.alarm_id)
    ).scalar()
    return Verification.SECOND_DETECTOR if confirmed else Verification.UNVERIFIED


def _false_alarms(conn: Connection, device: str | None, now: float) -> int:
    if device is None:
        return 0
    la = lifecycle_alarms
    n = conn.execute(
        sa.select(sa.func.count()).where(
            la.c.device == device, la.c.outcome == Outcome.FALSE_ALARM,
            la.c.resolved_at >= now - HISTORY_S,
        )
    ).scalar()  # fmt: skip
    return int(n or 0)


def _responder(conn: Connection, row: Any) -> Responder | None:
    who = row.acknowledged_by
    if who is None:
        return None
    w = conn.execute(sa.select(workers).where(workers.c.id == who)).first()
    p = conn.execute(sa.select(positions).where(positions.c.worker == who)).first()
    return Responder(
        id=who, name=w.name if w is not None else who, phone=w.phone if w is not None else "",
        status="on_site" if row.on_site_at is not None else "en_route",
        lat=p.lat if p is not None else None, lon=p.lon if p is not None else None,
        position_at=p.ts if p is not None else None,
    )  # fmt: skip


def snapshot(alarm: BrigadeAlarm) -> str:
    """The stored form of a message's facts (sorted keys: the same facts, the same bytes)."""
    return json.dumps(alarm.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
