"""What the worker's page and the SMS replies need from the cloud, as one small Protocol.

``cloud.lifecycle.AlarmDesk`` covers take / arrive / resolve; the page also needs the device's
place and owner phone and the worker's locale (``cloud.registry``), the audit history, a
"need help" action and positions. The adapter (cloud.web.adapter) joins those behind ``WorkerDesk``.
Actions raise ``cloud.lifecycle``'s ``UnknownAlarm`` and ``IllegalTransition``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from cloud.lifecycle import ActionResult, HazardReport, Outcome, State


@dataclass(frozen=True, slots=True)
class Place:
    """Where the device is (WGS-84) and whom to call about it."""

    lat: float
    lon: float
    address: str = ""
    building: str = ""
    floor: str = ""
    owner: str = ""
    owner_phone: str = ""  # E.164 or empty


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One audit event of the alarm, oldest first in ``AlarmPage.history``."""

    ts: float
    kind: str  # raised, notified, acknowledged, on_site, resolved, need_help, ...
    actor: str = ""
    channel: str | None = None
    note: str | None = None
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class BrigadeNote:
    """The fire brigade's word on the alarm: its status, its answer or a request."""

    ts: float
    brigade: str  # its name, as people know it
    kind: str  # status | answer | request
    status: str = ""  # received, dispatched, en_route, on_scene, closed; or accepted, rejected
    eta_s: int | None = None
    text: str = ""  # a request, or a note


@dataclass(frozen=True, slots=True)
class AlarmPage:
    """Everything the worker's page shows about one alarm."""

    alarm_id: int
    title_zh: str
    title_en: str
    severity: str
    device: str | None
    raised_at: float  # epoch seconds
    state: State
    outcome: Outcome | None = None
    place: Place | None = None  # None: the device has no registered location
    history: tuple[HistoryEntry, ...] = ()
    brigade: tuple[BrigadeNote, ...] = ()  # oldest first
    verified: bool = False  # a worker on site confirmed the fire


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """The person behind a token or a phone number."""

    id: str
    name: str
    locale: str = "zh-CN"  # "zh-CN" or "en"


class WorkerDesk(Protocol):
    """The cloud as the worker's page and the Twilio webhook see it (all async)."""

    async def worker(self, worker_id: str) -> WorkerInfo | None:
        """The worker with that id, or None."""
        ...

    async def worker_by_phone(self, phone: str) -> WorkerInfo | None:
        """The worker whose E.164 number is *phone*, or None."""
        ...

    async def latest_notified(self, worker_id: str) -> int | None:
        """The open alarm this worker was most recently notified of, or None."""
        ...

    async def view(self, alarm_id: int) -> AlarmPage:
        """The alarm's page; raises UnknownAlarm."""
        ...

    async def take(self, alarm_id: int, worker_id: str, channel: str) -> ActionResult:
        """The worker takes (acknowledges) the alarm."""
        ...

    async def arrive(self, alarm_id: int, worker_id: str, channel: str) -> ActionResult:
        """The worker is on site."""
        ...

    async def resolve(
        self, alarm_id: int, worker_id: str, outcome: Outcome, note: str | None, channel: str
    ) -> ActionResult:
        """The worker closes the alarm with an outcome (false_alarm counts against the device)."""
        ...

    async def need_help(
        self, alarm_id: int, worker_id: str, note: str | None, channel: str
    ) -> ActionResult:
        """The worker asks for help: an audit event, and the chain's next step at once."""
        ...

    async def record_position(self, worker_id: str, lat: float, lon: float, ts: float) -> bool:
        """Store the worker's position (feeds "nearest"); False if a newer one is stored."""
        ...

    async def verify(self, alarm_id: int, worker_id: str, channel: str) -> ActionResult:
        """The worker on site confirms the fire is real (the brigade hears it at once)."""
        ...


class RegistryFile(StrEnum):
    """The registry's files, as ``gridalarm cloud import`` names them (without extension)."""

    COMMUNITIES = "communities"
    GRIDS = "grids"
    WORKERS = "workers"
    SHIFTS = "shifts"
    DEVICE_LOCATIONS = "device_locations"

    @property
    def filename(self) -> str:
        """The file's name in a district folder, e.g. ``grids.geojson``."""
        return f"{self.value}.geojson" if self is RegistryFile.GRIDS else f"{self.value}.csv"


@runtime_checkable
class RegistryDesk(Protocol):
    """The registry as the HTTP API and the push button see it (all async).

    A desk that also satisfies this gets the registry API and ``POST /m/{token}/push``.
    """

    async def export_registry(self, file: RegistryFile) -> str:
        """The file's text, exactly as ``gridalarm cloud`` exports it."""
        ...

    async def import_registry(self, file: RegistryFile, text: str) -> int:
        """Import the file (rows with the same ids replaced); raises wire's ConfigError."""
        ...

    async def set_push_subscription(self, worker_id: str, subscription_json: str) -> bool:
        """Store the worker's Web Push subscription; False if there is no such worker."""
        ...


@runtime_checkable
class ReportDesk(Protocol):
    """Hazard reports from the worker's page (a desk with this gets ``/m/{token}/report``)."""

    async def report_hazard(self, report: HazardReport) -> int:
        """Raise the report as an alarm (the same report id again: the same alarm); its id."""
        ...

    async def area_at(self, lat: float, lon: float) -> tuple[str, str]:
        """(community, grid) of the grid polygon holding the point; empty strings if none."""
        ...
