"""What the registry knows, as frozen dataclasses: the typed read side of its tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """What a person does in the dispatch chain."""

    WORKER = "worker"  # grid worker (网格员): takes alarms
    SUPERVISOR = "supervisor"  # grid supervisor: second step of an escalation
    COMMANDER = "commander"  # duty commander of the command centre: last step


class Locale(StrEnum):
    """The language a person's messages are written in."""

    ZH_CN = "zh-CN"
    EN = "en"


@dataclass(frozen=True, slots=True)
class Point:
    """A WGS-84 position in degrees."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Community:
    """A community (社区): a group of grids."""

    id: str
    name_zh: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Grid:
    """A grid (网格): a polygon looked after by one or two workers."""

    id: str
    community: str
    name: str
    geometry: str  # GeoJSON geometry (Polygon or MultiPolygon), canonical JSON text
    centroid: Point  # computed on import


@dataclass(frozen=True, slots=True)
class DeviceLocation:
    """Where a device is and whom to call about it."""

    device: str
    lat: float
    lon: float
    address: str = ""
    building: str = ""  # building name as people say it, e.g. "7号楼"
    floor: str = ""  # text: "B1", "12", "1F"
    owner: str = ""  # owner, resident or shop name
    owner_phone: str = ""  # E.164 or empty


@dataclass(frozen=True, slots=True)
class Worker:
    """A person who can be notified: grid worker, supervisor or commander."""

    id: str
    name: str
    phone: str  # E.164
    locale: Locale = Locale.ZH_CN
    role: Role = Role.WORKER
    community: str = ""
    grids: tuple[str, ...] = ()  # assigned grids; the first one is the home grid
    push_subscription: str | None = None  # Web Push subscription, canonical JSON text


@dataclass(frozen=True, slots=True)
class Shift:
    """A weekly shift in local time: starts on each of *weekdays* (0 = Monday) at *start_min*.

    The shift covers the half-open interval [start, end); ``end_min <= start_min`` means it
    runs overnight into the next day (``start == end`` is a 24-hour shift).
    """

    worker: str
    weekdays: frozenset[int]
    start_min: int  # minutes after local midnight, 0..1439
    end_min: int  # 0..1440
    tz: str = "Asia/Shanghai"

    @property
    def duration_min(self) -> int:
        return (
            self.end_min - self.start_min
            if self.end_min > self.start_min
            else (self.end_min + 1440 - self.start_min)
        )


@dataclass(frozen=True, slots=True)
class Position:
    """A worker's last known position and when it was taken (epoch seconds)."""

    worker: str
    lat: float
    lon: float
    ts: float


@dataclass(frozen=True, slots=True)
class Registry:
    """A consistent snapshot of the whole registry, as loaded from the database."""

    communities: tuple[Community, ...] = ()
    grids: tuple[Grid, ...] = ()
    workers: tuple[Worker, ...] = ()
    shifts: tuple[Shift, ...] = ()
    positions: tuple[Position, ...] = ()
    locations: tuple[DeviceLocation, ...] = ()
    grid_supervisors: dict[str, str] = field(default_factory=dict)  # grid -> worker, explicit
    duty_commander: str | None = None  # designated commander, preferred when on duty
