"""The worker reports a hazard from the phone page: ``/m/{token}/report``.

The worker's signed link is the credential, as on the alarm page. The form carries a random
report id made when it was shown, so sending it twice (a double tap, a retry on a weak
signal) makes one report. Photos are size-limited and re-encoded without EXIF
(``cloud.web.photos``) before anything is stored; a refused photo refuses the whole form, so
the worker knows and nothing half-made is kept.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from jinja2 import Environment
from starlette.datastructures import FormData, UploadFile

from cloud.lifecycle import HAZARD_TITLES, HazardKind, HazardReport
from cloud.notify import LinkSigner
from cloud.web.page import NOTE_MAX, Scope, same_origin, scope_checker
from cloud.web.photos import MAX_BYTES, PhotoRefused, PhotoStore
from cloud.web.protocols import ReportDesk, WorkerDesk
from cloud.web.render import ZH, page

logger = logging.getLogger(__name__)

MAX_PHOTOS = 4
MAX_BODY = MAX_PHOTOS * MAX_BYTES + 64 * 1024
FIELDS = ("report_id", "kind", "note", "lat", "lon", "photos")


class _Desk(WorkerDesk, ReportDesk):
    """What the report routes need: the worker lookups and the reports."""


def router(
    desk: _Desk, signer: LinkSigner, env: Environment, clock: Callable[[], float],
    public_origin: str, *, photos: PhotoStore,
) -> APIRouter:  # fmt: skip
    """The report form, its post, the confirmation and the worker's own photos."""
    r = APIRouter()
    scope = scope_checker(desk, signer, clock)

    def form_page(token: str, s: Scope, status: int = 200, problem: str | None = None) -> Any:
        kinds = [(k.value, HAZARD_TITLES[k][0 if s.locale == ZH else 1]) for k in HazardKind]
        return page(
            env, "report.html", status, locale=s.locale, token=token, kinds=kinds,
            report_id=secrets.token_urlsafe(16), note_max=NOTE_MAX, max_photos=MAX_PHOTOS,
            problem=problem,
        )  # fmt: skip

    @r.get("/m/{token}/report", response_class=HTMLResponse, name="report_form")
    async def report_form(request: Request, token: str) -> Any:
        return form_page(token, await scope(request, token))

    @r.post("/m/{token}/report", response_class=HTMLResponse, name="report_post")
    async def report_post(request: Request, token: str) -> Any:
        same_origin(request, public_origin)
        s = await scope(request, token)
        form = await _read(request)
        try:
            report = await _report(desk, photos, s, form)
        except PhotoRefused as err:
            why = f"照片无法使用：{err}" if s.locale == ZH else f"A photo was refused: {err}"
            return form_page(token, s, 422, problem=why)
        finally:
            await form.close()  # the uploads' temporary files
        alarm_id = await desk.report_hazard(report)
        logger.info("alarm %d: hazard %s reported by %s", alarm_id, report.kind, s.worker_id)
        return RedirectResponse(f"report/{report.report_id}?alarm={alarm_id}", status_code=303)

    @r.get("/m/{token}/report/{report_id}", response_class=HTMLResponse, name="report_done")
    async def report_done(request: Request, token: str, report_id: str) -> Any:
        s = await scope(request, token)
        alarm = request.query_params.get("alarm", "")
        return page(env, "reported.html", 200, locale=s.locale, token=token,
                    alarm=alarm if alarm.isdigit() else "")  # fmt: skip

    @r.get("/m/{token}/photos/{name}", name="report_photo")
    async def photo(request: Request, token: str, name: str) -> FileResponse:
        await scope(request, token)
        path = photos.path(name)
        if path is None:
            raise HTTPException(404, "no such photo")
        return FileResponse(path, media_type="image/jpeg")

    return r


async def _read(request: Request) -> FormData:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "multipart/form-data":
        raise HTTPException(415, "expected multipart/form-data")
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise HTTPException(411, "Content-Length required")
    if int(declared) > MAX_BODY:
        raise HTTPException(413, f"larger than {MAX_BODY // (1024 * 1024)} MB")
    form = await request.form(max_files=MAX_PHOTOS, max_fields=len(FIELDS) + 2)
    unknown = set(form.keys()) - set(FIELDS)
    if unknown:
        raise HTTPException(400, f"unknown field {sorted(unknown)[0]!r}")
    return form


async def _report(desk: _Desk, photos: PhotoStore, s: Scope, form: FormData) -> HazardReport:
    try:
        kind = HazardKind(_text(form, "kind"))
    except ValueError as err:
        raise HTTPException(400, "kind must be one of " + ", ".join(HazardKind)) from err
    note = " ".join(_text(form, "note").split())
    if len(note) > NOTE_MAX or not note.isprintable():
        raise HTTPException(400, f"note must be printable text up to {NOTE_MAX} characters")
    lat, lon = _point(form)
    community, grid = ("", "") if lat is None or lon is None else await desk.area_at(lat, lon)
    names = [await asyncio.to_thread(photos.keep, await f.read()) for f in _files(form)]
    try:
        return HazardReport(
            report_id=_text(form, "report_id"), reporter=s.worker_id, kind=kind, note=note,
            lat=lat, lon=lon, grid=grid, community=community, photos=tuple(names),
            locale=s.locale,
        )  # fmt: skip
    except ValueError as err:
        raise HTTPException(400, str(err)) from err


def _text(form: FormData, key: str) -> str:
    value = form.get(key, "")
    if not isinstance(value, str):
        raise HTTPException(400, f"{key} must be text")
    return value


def _files(form: FormData) -> list[UploadFile]:
    files = [f for f in form.getlist("photos") if isinstance(f, UploadFile) and f.filename]
    for f in files:
        if f.size is not None and f.size > MAX_BYTES:
            raise PhotoRefused(f"larger than {MAX_BYTES // (1024 * 1024)} MB")
    return files


def _point(form: FormData) -> tuple[float | None, float | None]:
    raw = (_text(form, "lat"), _text(form, "lon"))
    if not raw[0] and not raw[1]:
        return None, None  # the phone gave no position: the centre places it from the note
    try:
        lat, lon = float(raw[0]), float(raw[1])
    except ValueError as err:
        raise HTTPException(400, "lat and lon must be numbers") from err
    if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180):
        raise HTTPException(400, "lat/lon out of range")
    return lat, lon
