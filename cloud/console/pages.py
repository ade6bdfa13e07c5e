"""The console's read-only pages: board (with its live stream), map, KPIs and CSV, device,
grid and worker pages, and the language switch."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sse_starlette import EventSourceResponse

from cloud.console.auth import safe_next
from cloud.console.board import open_alarms
from cloud.console.compression import compressed
from cloud.console.kpis import all_kpis
from cloud.console.mapdata import map_data
from cloud.console.places import device_page, filter_lists, grid_page, worker_page
from cloud.console.render import EN, LANG_COOKIE, ZH, locale_of, render_text
from cloud.console.site import Site
from cloud.console.users import Role, list_users


def board_rows(site: Site, locale: str) -> str:
    """The board's rows as HTML (blocking: the live feed runs it in a thread)."""
    now = site.clock()
    items = open_alarms(site.db, now)
    return render_text(
        site.env, "board_rows.html", locale, items=items, now=now, prefix=site.prefix
    )


def router(site: Site) -> APIRouter:
    api = APIRouter()
    p = site.prefix
    _board_routes(api, site)

    @api.get(p + "/map", include_in_schema=False)
    async def map_page(request: Request) -> Response:
        session = await site.gate.viewer(request)
        return site.page(request, "map.html", session=session, version=site.feed.version)

    @api.get(p + "/map.json", include_in_schema=False)
    async def map_json(request: Request) -> Response:
        await site.gate.viewer(request)
        data = await asyncio.to_thread(map_data, site.db, site.clock())
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        return compressed(request, body, "application/json", {"Cache-Control": "no-store"})

    _kpi_routes(api, site)

    @api.get(p + "/staff", include_in_schema=False)
    async def staff(request: Request) -> Response:
        session = await site.gate.viewer(request)
        if session.staff.role is not Role.ADMIN:
            raise HTTPException(403, "only admins see the accounts")
        accounts = await asyncio.to_thread(list_users, site.db)
        return site.page(request, "staff.html", session=session, accounts=accounts)

    @api.get(p + "/lang/{code}", include_in_schema=False)
    async def language(code: str, next: str = p + "/") -> Response:
        response = RedirectResponse(safe_next(p, next), status_code=303)
        if code in (ZH, EN):
            site.gate.set_cookie(response, LANG_COOKIE, code, 365 * 86400)
        return response

    _place_routes(api, site)  # last: its /{kind}/{ident} would shadow the routes above
    return api


def _board_routes(api: APIRouter, site: Site) -> None:
    p = site.prefix

    @api.get(p + "/", include_in_schema=False)
    async def board(request: Request) -> Response:
        session = await site.gate.viewer(request)
        version, rows = await site.feed.board(locale_of(request))
        filters = await asyncio.to_thread(filter_lists, site.db)
        return site.page(
            request, "board.html", session=session, rows=rows, version=version, filters=filters
        )

    @api.get(p + "/board/rows", include_in_schema=False)
    async def rows(request: Request) -> Response:
        await site.gate.viewer(request)
        version, html = await site.feed.board(locale_of(request))
        return Response(html, media_type="text/html", headers={"X-Board-Version": str(version)})

    @api.get(p + "/events", include_in_schema=False)
    async def events(request: Request, v: int = -1) -> Response:
        await site.gate.viewer(request)
        last = request.headers.get("last-event-id", "")
        seen = int(last) if last.isdigit() else v
        return EventSourceResponse(
            site.feed.stream(locale_of(request), seen),
            ping=15,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )


def _place_routes(api: APIRouter, site: Site) -> None:
    p = site.prefix
    pages: dict[str, tuple[Any, str]] = {
        "devices": (device_page, "device.html"),
        "grids": (grid_page, "grid.html"),
        "workers": (worker_page, "worker.html"),
    }

    @api.get(p + "/{kind}/{ident}", include_in_schema=False)
    async def place(request: Request, kind: str, ident: str) -> Response:
        session = await site.gate.viewer(request)
        if kind not in pages:
            raise HTTPException(404, "no such page")
        read, template = pages[kind]
        data = await asyncio.to_thread(read, site.db, ident)
        if data is None:
            raise HTTPException(404, f"no such {kind[:-1]}")
        return site.page(
            request, template, session=session, chart=site.readings is not None, **data
        )


def _kpi_routes(api: APIRouter, site: Site) -> None:
    p = site.prefix

    @api.get(p + "/kpis", include_in_schema=False)
    async def kpis(request: Request) -> Response:
        session = await site.gate.viewer(request)
        tables = await asyncio.to_thread(all_kpis, site.db, site.clock())
        return site.page(request, "kpis.html", session=session, tables=tables)

    @api.get(p + "/kpis/{key}.csv", include_in_schema=False)
    async def kpi_csv(request: Request, key: str) -> Response:
        await site.gate.viewer(request)
        tables = await asyncio.to_thread(all_kpis, site.db, site.clock())
        table = next((t for t in tables if t.key == key), None)
        if table is None:
            raise HTTPException(404, "no such table")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([f"{zh} {en}" for zh, en in table.columns])
        writer.writerows(table.rows)
        return Response(
            "\ufeff" + out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{key}.csv"'},
        )
