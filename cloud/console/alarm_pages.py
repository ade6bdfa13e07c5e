"""The alarm detail page, its readings chart data, and the dispatcher's actions."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from cloud.console import actions
from cloud.console.detail import alarm_detail
from cloud.console.places import worker_choices
from cloud.console.site import Site
from cloud.lifecycle.errors import IllegalTransition, UnknownAlarm
from cloud.lifecycle.model import Outcome

READINGS_WINDOW_S = 6 * 3600  # the chart shows the device's last six hours
MAX_POINTS = 2000  # thinned to about this many per field
NOTE_MAX = 500


def _series(rows: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    step = max(1, math.ceil(len(rows) / MAX_POINTS))
    series: dict[str, dict[str, list[Any]]] = {}
    for ts, fields in rows[::step]:
        for name, value in fields.items():
            if isinstance(value, bool | int | float):
                s = series.setdefault(name, {"t": [], "v": []})
                s["t"].append(ts * 1000)
                s["v"].append(float(value))
    return series


def router(site: Site) -> APIRouter:
    api = APIRouter()
    p = site.prefix

    @api.get(p + "/alarms/{alarm_id}", include_in_schema=False)
    async def detail(request: Request, alarm_id: int) -> Response:
        session = await site.gate.viewer(request)
        found = await asyncio.to_thread(alarm_detail, site.db, alarm_id)
        if found is None:
            raise HTTPException(404, "no such alarm")
        people = (
            await asyncio.to_thread(worker_choices, site.db) if session.staff.role.can_act else []
        )
        return site.page(
            request,
            "alarm.html",
            session=session,
            d=found,
            people=people,
            outcomes=[o.value for o in Outcome],
            chart=site.readings is not None,
        )

    @api.get(p + "/alarms/{alarm_id}/readings.json", include_in_schema=False)
    async def readings(request: Request, alarm_id: int) -> Response:
        await site.gate.viewer(request)
        found = await asyncio.to_thread(alarm_detail, site.db, alarm_id)
        sink = site.readings
        if found is None or sink is None or found.alarm["device"] is None:
            return JSONResponse({"series": {}})
        since = site.clock() - READINGS_WINDOW_S
        rows = await asyncio.to_thread(sink.recent, found.alarm["device"], since)
        return JSONResponse({"series": _series(rows), "raised_at": found.alarm["raised_at"] * 1000})

    @api.get(p + "/devices/{device}/readings.json", include_in_schema=False)
    async def device_readings(request: Request, device: str) -> Response:
        await site.gate.viewer(request)
        sink = site.readings
        if sink is None:
            return JSONResponse({"series": {}})
        since = site.clock() - READINGS_WINDOW_S
        rows = await asyncio.to_thread(sink.recent, device, since)
        return JSONResponse({"series": _series(rows)})

    _action_routes(api, site)
    return api


def _action_routes(api: APIRouter, site: Site) -> None:
    p = site.prefix

    @api.post(p + "/alarms/{alarm_id}/{action}", include_in_schema=False)
    async def act(request: Request, alarm_id: int, action: str) -> Response:
        if action not in ("reassign", "escalate", "resolve"):
            raise HTTPException(404, "no such action")
        session, form = await site.gate.actor(request, {"worker", "outcome", "note"})
        user, note = session.staff.username, form.get("note", "")[:NOTE_MAX]
        try:
            if action == "reassign":
                if not await actions.reassign(
                    site.desk, alarm_id, user, form.get("worker", ""), note
                ):
                    raise HTTPException(400, "no such worker")
            elif action == "escalate":
                await actions.escalate(site.desk, alarm_id, user, note)
            else:
                outcome = _outcome(form.get("outcome"))
                await actions.resolve(site.desk, alarm_id, user, outcome, note)
        except UnknownAlarm as err:
            raise HTTPException(404, str(err)) from err
        except IllegalTransition as err:
            raise HTTPException(409, str(err)) from err
        return RedirectResponse(f"{p}/alarms/{alarm_id}", status_code=303)


def _outcome(value: str | None) -> Outcome:
    try:
        return Outcome(value or "")
    except ValueError:
        raise HTTPException(400, "choose an outcome") from None
