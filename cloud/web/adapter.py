"""``WorkerDesk`` over the real pieces: ``cloud.lifecycle.AlarmDesk`` and the registry tables.

Blocking SQLAlchemy reads run in a thread; alarms are read through the lifecycle, never its
tables.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.brigade import status as brigade_status
from cloud.lifecycle import ActionResult, AlarmDesk, HazardReport, Outcome, State, views
from cloud.registry import store as registry_store
from cloud.registry import tables as registry
from cloud.registry.geo import in_polygons
from cloud.web.protocols import (
    AlarmPage,
    BrigadeNote,
    HistoryEntry,
    Place,
    RegistryFile,
    WorkerInfo,
)

_EXPORTS: dict[RegistryFile, Callable[[Engine], str]] = {
    RegistryFile.COMMUNITIES: registry_store.export_communities_csv,
    RegistryFile.GRIDS: registry_store.export_grids_geojson,
    RegistryFile.WORKERS: registry_store.export_workers_csv,
    RegistryFile.SHIFTS: registry_store.export_shifts_csv,
    RegistryFile.DEVICE_LOCATIONS: registry_store.export_device_locations_csv,
}
_IMPORTS: dict[RegistryFile, Callable[[Engine, str, str], int]] = {
    RegistryFile.COMMUNITIES: registry_store.import_communities_csv,
    RegistryFile.GRIDS: registry_store.import_grids_geojson,
    RegistryFile.WORKERS: registry_store.import_workers_csv,
    RegistryFile.SHIFTS: registry_store.import_shifts_csv,
    RegistryFile.DEVICE_LOCATIONS: registry_store.import_device_locations_csv,
}


class LifecycleWorkerDesk:
    """The worker's page and SMS replies over *desk* (lifecycle) and *registry_db*."""

    def __init__(
        self,
        desk: AlarmDesk,
        registry_db: Engine,
        on_position: Callable[[str, float, float, float], None] | None = None,
    ) -> None:
        self._desk = desk
        self._registry = registry_db
        self._on_position = on_position  # the dispatcher's live index: "nearest" uses it at once
        brigade_status.create_status_tables(desk.db)  # the page shows the brigade's reports

    async def worker(self, worker_id: str) -> WorkerInfo | None:
        return await asyncio.to_thread(self._worker, registry.workers.c.id == worker_id)

    async def worker_by_phone(self, phone: str) -> WorkerInfo | None:
        return await asyncio.to_thread(self._worker, registry.workers.c.phone == phone)

    async def latest_notified(self, worker_id: str) -> int | None:
        return await asyncio.to_thread(self._latest_notified, worker_id)

    async def view(self, alarm_id: int) -> AlarmPage:
        return await asyncio.to_thread(self._view, alarm_id)

    async def take(self, alarm_id: int, worker_id: str, channel: str) -> ActionResult:
        return await self._desk.acknowledge(alarm_id, worker_id, channel)

    async def arrive(self, alarm_id: int, worker_id: str, channel: str) -> ActionResult:
        return await self._desk.arrive(alarm_id, worker_id, channel)

    async def resolve(
        self, alarm_id: int, worker_id: str, outcome: Outcome, note: str | None, channel: str
    ) -> ActionResult:
        return await self._desk.resolve(alarm_id, worker_id, outcome, channel=channel, note=note)

    async def need_help(
        self, alarm_id: int, worker_id: str, note: str | None, channel: str
    ) -> ActionResult:
        return await self._desk.need_help(alarm_id, worker_id, channel, note)

    async def verify(self, alarm_id: int, worker_id: str, channel: str) -> ActionResult:
        return await self._desk.verify(alarm_id, worker_id, channel)

    async def record_position(self, worker_id: str, lat: float, lon: float, ts: float) -> bool:
        stored = await asyncio.to_thread(
            registry_store.record_position, self._registry, worker_id, lat, lon, ts
        )
        if stored and self._on_position is not None:
            self._on_position(worker_id, lat, lon, ts)
        return stored

    async def export_registry(self, file: RegistryFile) -> str:
        return await asyncio.to_thread(_EXPORTS[file], self._registry)

    async def import_registry(self, file: RegistryFile, text: str) -> int:
        return await asyncio.to_thread(_IMPORTS[file], self._registry, text, file.filename)

    async def set_push_subscription(self, worker_id: str, subscription_json: str) -> bool:
        return await asyncio.to_thread(
            registry_store.set_push_subscription, self._registry, worker_id, subscription_json
        )

    async def report_hazard(self, report: HazardReport) -> int:
        return await self._desk.report(report)

    async def area_at(self, lat: float, lon: float) -> tuple[str, str]:
        return await asyncio.to_thread(self._area_at, lat, lon)

    # -- blocking parts, in a thread -------------------------------------------------------------
    def _area_at(self, lat: float, lon: float) -> tuple[str, str]:
        g = registry.grids
        with self._registry.connect() as conn:
            rows = conn.execute(sa.select(g.c.id, g.c.community, g.c.geometry)).all()
        for r in rows:
            geometry = json.loads(r.geometry)
            polygons = geometry["coordinates"]
            if geometry["type"] == "Polygon":
                polygons = [polygons]
            if in_polygons(lat, lon, polygons):
                return r.community, r.id
        return "", ""

    def _worker(self, where: sa.ColumnElement[bool]) -> WorkerInfo | None:
        w = registry.workers
        with self._registry.connect() as conn:
            row = conn.execute(sa.select(w.c.id, w.c.name, w.c.locale).where(where)).first()
        return None if row is None else WorkerInfo(row.id, row.name, row.locale)

    def _latest_notified(self, worker_id: str) -> int | None:
        with self._desk.db.connect() as conn:
            return views.latest_notified(conn, worker_id)

    def _view(self, alarm_id: int) -> AlarmPage:
        row = self._desk.lifecycle.state(alarm_id)  # UnknownAlarm
        history = tuple(_entry(e) for e in self._desk.lifecycle.history(alarm_id))
        with self._desk.db.connect() as conn:
            notes = tuple(_note(name, r) for name, r in brigade_status.for_alarm(conn, alarm_id))
        return AlarmPage(
            alarm_id, row["title_zh"], row["title_en"], row["severity"], row["device"],
            row["raised_at"], State(row["state"]),
            Outcome(row["outcome"]) if row.get("outcome") else None,
            self._place(row["device"]), history, notes,
            verified=any(e.kind == "verified" for e in history),
        )  # fmt: skip

    def _place(self, device: str | None) -> Place | None:
        if device is None:
            return None
        d = registry.device_locations
        with self._registry.connect() as conn:
            r = conn.execute(sa.select(d).where(d.c.device == device)).first()
        if r is None:
            return None
        return Place(r.lat, r.lon, r.address, r.building, r.floor, r.owner, r.owner_phone)


def _note(brigade: str, r: brigade_status.Recorded) -> BrigadeNote:
    said = r.report.status or r.report.answer
    return BrigadeNote(
        r.received_at, brigade, r.report.kind.value, said.value if said else "",
        r.report.eta_s, r.report.text or "",
    )  # fmt: skip


def _entry(e: dict[str, Any]) -> HistoryEntry:
    try:
        detail = json.loads(e.get("detail") or "{}")
    except ValueError:
        detail = {}
    if not isinstance(detail, dict):
        detail = {}
    return HistoryEntry(
        e["ts"], e["kind"], e.get("actor") or "", _text(detail.get("channel")),
        _text(detail.get("note")), _text(detail.get("outcome")),
    )  # fmt: skip


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
