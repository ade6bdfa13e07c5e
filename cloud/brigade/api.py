"""The brigade API, ``/api/brigade/v1``: its alarms, their live stream, its reports back.

Every route passes the ``Guard`` first (key, scope, size, signature). A brigade only ever
sees the fire-class alarms of its own area: another area's alarm is 404, exactly like an
unknown one. Reports are idempotent by key (the ``Idempotency-Key`` header or the body's
``idempotency_key``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from sse_starlette import EventSourceResponse, ServerSentEvent

from cloud.brigade import stream
from cloud.brigade.api_models import (
    AlarmList,
    AnswerReport,
    Problem,
    Receipt,
    RequestReport,
    StatusReport,
    StreamMessage,
)
from cloud.brigade.area import Which
from cloud.brigade.directory import Brigade
from cloud.brigade.facts import BrigadeAlarm
from cloud.brigade.guard import Guard
from cloud.brigade.portal import BrigadePortal
from cloud.brigade.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from cloud.brigade.status import KeyReused, Kind, NotVisible, Recorded, Report

PREFIX = "/api/brigade/v1"
PING_S = 15  # a comment line this often keeps proxies from closing an idle stream
NOT_FOUND = "no such alarm"
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, unknown, revoked or expired key; bad "
          "or stale signature"},
    403: {"model": Problem, "description": "The key lacks the scope"},
    404: {"model": Problem, "description": "No such alarm in the brigade's area"},
}  # fmt: skip
SIGNED: dict[str, Any] = {  # documented here; checked by the Guard before the route runs
    "parameters": [
        {"name": TIMESTAMP_HEADER, "in": "header", "required": True,
         "schema": {"type": "string"}, "description": "Unix seconds; at most 300 s off"},
        {"name": SIGNATURE_HEADER, "in": "header", "required": True,
         "schema": {"type": "string"}, "description": "v1=<hex HMAC-SHA256 with the brigade's "
         "signing secret over '<timestamp>.<raw body>'>"},
    ]
}  # fmt: skip
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The idempotency key came with another report"},
    413: {"model": Problem, "description": "Body over 64 KiB"},
}
KEY_MISSING = {  # a FastAPI validation error, as the documented HTTPValidationError
    "loc": ["header", IDEMPOTENCY_HEADER], "type": "value_error",
    "msg": "one idempotency key is required (the Idempotency-Key header or idempotency_key, "
    "the same if both)",
}  # fmt: skip
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class EventStream(EventSourceResponse):
    """sse-starlette's response, its media type said where FastAPI's schema reads it."""

    media_type = "text/event-stream"


def _me(request: Request) -> Brigade:
    brigade: Brigade = request.state.brigade
    return brigade


Me = Annotated[Brigade, Depends(_me)]
KeyHeader = Annotated[
    str | None,
    Header(alias=IDEMPOTENCY_HEADER, max_length=128, description="Idempotency key of a report"),
]


def router(portal: BrigadePortal) -> APIRouter:
    """The brigade API's routes over *portal*."""
    guard = Guard(portal.db, portal.clock)

    class GuardedRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            inner = super().get_route_handler()

            async def handler(request: Request) -> Response:
                request.state.brigade = await guard.admit(request)
                return await inner(request)

            return handler

    bearer = HTTPBearer(auto_error=False, description="A brigade API key: gab_<id>_<secret>")
    r = APIRouter(
        prefix=PREFIX, route_class=GuardedRoute, tags=["brigade"], responses=ERRORS,
        dependencies=[Depends(bearer)],  # documents the scheme; the Guard checks the key
    )  # fmt: skip
    _reads(r, portal)
    _stream(r, portal, guard)
    _writes(r, portal)
    return r


def _reads(r: APIRouter, portal: BrigadePortal) -> None:
    @r.get("/alarms", name="brigade_alarms")
    async def alarms(
        me: Me,
        state: Annotated[Which, Query(description="open, or all (resolved ones too)")] = Which.OPEN,
        since: Annotated[float | None, Query(description="Raised at or after (epoch s)")] = None,
    ) -> AlarmList:
        """Active and recent fire-class alarms of the brigade's area, newest first."""
        return AlarmList(alarms=await portal.alarms(me, state, since))

    @r.get("/alarms/{alarm_id}", name="brigade_alarm")
    async def alarm(me: Me, alarm_id: int) -> BrigadeAlarm:
        """One alarm's facts as they are now."""
        got = await portal.alarm(me, alarm_id)
        if got is None:
            raise HTTPException(404, NOT_FOUND)
        return got


def _stream(r: APIRouter, portal: BrigadePortal, guard: Guard) -> None:
    @r.get(
        "/stream", name="brigade_stream", response_class=EventStream,
        responses={200: {"model": StreamMessage, "description": "Server-Sent Events: id is "
                         "seq, event is the step, data is a StreamMessage"}},
    )  # fmt: skip
    async def live(
        request: Request,
        me: Me,
        after: Annotated[int | None, Query(ge=0, description="Resume after this seq")] = None,
        last_event_id: Annotated[
            str | None, Header(alias="Last-Event-ID", description="Resume after this seq")
        ] = None,
    ) -> EventStream:
        """The brigade's messages as they happen; without a resume point, from now on. The
        stream ends when the key is revoked or expires."""
        start = _resume_point(after, last_event_id)
        if start is None:
            start = await portal.latest_seq()

        async def events() -> AsyncIterator[ServerSentEvent]:
            async def allowed() -> bool:
                return await guard.still_admitted(request)

            async for m in stream.messages(portal.db, portal.bell, me.id, start, allowed=allowed):
                yield ServerSentEvent(data=m.data, id=str(m.seq), event=m.step)

        return EventStream(events(), ping=PING_S, headers={"Cache-Control": "no-store"})


def _resume_point(after: int | None, last_event_id: str | None) -> int | None:
    if last_event_id is not None:
        if not last_event_id.isascii() or not last_event_id.isdigit():
            raise HTTPException(400, "Last-Event-ID must be a seq this stream sent")
        return int(last_event_id)
    return after


def _writes(r: APIRouter, portal: BrigadePortal) -> None:
    async def store(me: Brigade, alarm_id: int, report: Report, keys: list[str | None]) -> Receipt:
        given = {k for k in keys if k}
        if len(given) != 1:
            raise HTTPException(422, [KEY_MISSING])  # the shape /openapi.json gives every 422
        try:
            rec = await portal.report(me, alarm_id, report, given.pop())
        except NotVisible:
            raise HTTPException(404, NOT_FOUND) from None
        except KeyReused:
            raise HTTPException(409, "this idempotency key came with another report") from None
        return _receipt(rec)

    @r.post(
        "/alarms/{alarm_id}/status",
        name="brigade_status",
        responses=WRITE_ERRORS,
        openapi_extra=SIGNED,
    )
    async def post_status(me: Me, alarm_id: int, body: StatusReport, key: KeyHeader = None
                          ) -> Receipt:  # fmt: skip
        """The brigade's status: received, dispatched (the grid worker gets an SMS), en_route,
        on_scene, closed (with a disposition)."""
        report = Report(Kind.STATUS, status=body.status, disposition=body.disposition,
                        eta_s=body.eta_s, incident=body.incident, text=body.note)  # fmt: skip
        return await store(me, alarm_id, report, [key, body.idempotency_key])

    @r.post(
        "/alarms/{alarm_id}/answer",
        name="brigade_answer",
        responses=WRITE_ERRORS,
        openapi_extra=SIGNED,
    )
    async def post_answer(me: Me, alarm_id: int, body: AnswerReport, key: KeyHeader = None
                          ) -> Receipt:  # fmt: skip
        """Accepted (their incident number) or rejected with a reason: a rejection pages our
        duty commander."""
        report = Report(Kind.ANSWER, answer=body.answer, incident=body.incident,
                        reason=body.reason, text=body.text)  # fmt: skip
        return await store(me, alarm_id, report, [key, body.idempotency_key])

    @r.post(
        "/alarms/{alarm_id}/requests",
        name="brigade_request",
        responses=WRITE_ERRORS,
        openapi_extra=SIGNED,
    )
    async def post_request(me: Me, alarm_id: int, body: RequestReport, key: KeyHeader = None
                           ) -> Receipt:  # fmt: skip
        """A request to our side ("ETA of the key holder?"): on the grid worker's page and
        sent to them."""
        report = Report(Kind.REQUEST, text=body.text)
        return await store(me, alarm_id, report, [key, body.idempotency_key])


def _receipt(rec: Recorded) -> Receipt:
    return Receipt(id=rec.id, alarm_id=rec.alarm_id, kind=rec.report.kind,
                   received_at=rec.received_at, repeat=not rec.first)  # fmt: skip


def event_data(message: str) -> StreamMessage:
    """A stream event's data as its model (for clients and tests)."""
    return StreamMessage.model_validate(json.loads(message))
