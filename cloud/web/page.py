"""The worker's phone page: ``GET /m/{token}``, its actions and the position beacon.

The signed token in the path is the only credential: it names one worker and one alarm, and
no form field can name another. No cookies are used, so a cross-site form cannot borrow an
ambient session; state changes are POST-only, and an ``Origin`` from elsewhere is refused.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment

from cloud.lifecycle import IllegalTransition, Outcome, UnknownAlarm
from cloud.notify import LinkExpired, LinkForged, LinkMalformed, LinkSigner
from cloud.web.forms import read_form
from cloud.web.protocols import WorkerDesk
from cloud.web.render import ZH, nav_links, page, pick_locale

logger = logging.getLogger(__name__)

NOTE_MAX = 500
ACTIONS = ("take", "arrive", "verify", "resolve", "false_alarm")


@dataclass(frozen=True, slots=True)
class Scope:
    """What a verified token allows: this worker, this alarm, in this language."""

    worker_id: str
    alarm_id: int
    locale: str


class Refused(Exception):
    """A request refused with a friendly page: *status*, zh/en heading and text."""

    def __init__(self, status: int, zh: tuple[str, str], en: tuple[str, str], locale: str):
        super().__init__(en[0])
        self.status, self.zh, self.en, self.locale = status, zh, en, locale


def scope_checker(
    desk: WorkerDesk, signer: LinkSigner, clock: Callable[[], float]
) -> Callable[[Request, str], Awaitable[Scope]]:
    """Verify a page token: its Scope, or Refused (410 expired, 403 forged, 404 unknown)."""

    async def scope(request: Request, token: str) -> Scope:
        accept = request.headers.get("accept-language")
        now = datetime.fromtimestamp(clock(), UTC)
        try:
            worker_id, alarm = signer.verify(token, now)
        except LinkExpired as err:
            who = await desk.worker(err.worker_id)
            raise Refused(410, *_EXPIRED, pick_locale(who.locale if who else None, accept)) from err
        except (LinkForged, LinkMalformed) as err:
            logger.warning("page token refused: %s", err)
            raise Refused(403, *_FORGED, pick_locale(None, accept)) from err
        who = await desk.worker(worker_id)
        locale = pick_locale(who.locale if who else None, accept)
        if who is None or not alarm.isascii() or not alarm.isdigit():
            raise Refused(404, *UNKNOWN_ALARM, locale)
        return Scope(worker_id, int(alarm), locale)

    return scope


def router(
    desk: WorkerDesk, signer: LinkSigner, env: Environment, clock: Callable[[], float],
    public_origin: str, *, push_key: str | None = None,
) -> APIRouter:  # fmt: skip
    """The page's routes over *desk*; tokens are checked with *signer* at *clock* time.
    With *push_key* (VAPID public key) the page offers the "enable push" button."""
    r = APIRouter()
    scope = scope_checker(desk, signer, clock)

    async def show(token: str, s: Scope, status: int = 200, problem: str | None = None) -> Any:
        try:
            alarm = await desk.view(s.alarm_id)
        except UnknownAlarm as err:
            raise Refused(404, *UNKNOWN_ALARM, s.locale) from err
        label = alarm.title_zh if s.locale == ZH else alarm.title_en
        nav = nav_links(alarm.place, label) if alarm.place else {}
        return page(
            env, "alarm.html", status, locale=s.locale, alarm=alarm, token=token, nav=nav,
            problem=problem, note_max=NOTE_MAX, push_key=push_key,
        )  # fmt: skip

    @r.get("/m/{token}", response_class=HTMLResponse, name="alarm_page")
    async def alarm_page(request: Request, token: str) -> Any:
        return await show(token, await scope(request, token))

    @r.post("/m/{token}/action", response_class=HTMLResponse, name="alarm_action")
    async def alarm_action(request: Request, token: str) -> Any:
        same_origin(request, public_origin)
        s = await scope(request, token)
        form = await read_form(request, allowed=("action", "outcome", "note"))
        action, outcome, note = _parse_action(form)
        try:
            await _act(desk, s, action, outcome, note)
        except UnknownAlarm as err:
            raise Refused(404, *UNKNOWN_ALARM, s.locale) from err
        except IllegalTransition as err:
            logger.info("alarm %d: %s by %s refused: %s", s.alarm_id, action, s.worker_id, err)
            return await show(token, s, 409, problem=_why(err, s.locale))
        # Post/redirect/get: a reload does not repeat the action.
        return RedirectResponse(f"../{token}", status_code=303)

    @r.post("/m/{token}/position", status_code=204, name="alarm_position")
    async def position(request: Request, token: str) -> Response:
        same_origin(request, public_origin)
        s = await scope(request, token)
        form = await read_form(request, allowed=("lat", "lon", "accuracy"))
        lat, lon = _coordinate(form, "lat", 90.0), _coordinate(form, "lon", 180.0)
        try:
            await desk.view(s.alarm_id)  # a token for a vanished alarm is no credential
        except UnknownAlarm as err:
            raise Refused(404, *UNKNOWN_ALARM, s.locale) from err
        # The server's clock, not the phone's: a wrong phone clock must not win "freshest".
        await desk.record_position(s.worker_id, lat, lon, clock())
        return Response(status_code=204)

    return r


async def _act(
    desk: WorkerDesk, s: Scope, action: str, outcome: Outcome | None, note: str | None
) -> None:
    if action == "take":
        await desk.take(s.alarm_id, s.worker_id, "web")
    elif action == "arrive":
        await desk.arrive(s.alarm_id, s.worker_id, "web")
    elif action == "verify":  # on site, the fire is real: the brigade hears it at once
        await desk.verify(s.alarm_id, s.worker_id, "web")
    elif action == "false_alarm":
        await desk.resolve(s.alarm_id, s.worker_id, Outcome.FALSE_ALARM, note, "web")
    else:
        assert outcome is not None  # _parse_action checked it
        await desk.resolve(s.alarm_id, s.worker_id, outcome, note, "web")


def _parse_action(form: dict[str, str]) -> tuple[str, Outcome | None, str | None]:
    action = form.get("action", "")
    if action not in ACTIONS:
        raise HTTPException(400, f"action must be one of {', '.join(ACTIONS)}")
    outcome: Outcome | None = None
    if action == "resolve":
        try:
            outcome = Outcome(form.get("outcome", ""))
        except ValueError as err:
            raise HTTPException(400, "outcome must be one of real, false_alarm, "
                                "device_fault, test") from err  # fmt: skip
    note = form.get("note", "").strip() or None
    if note is not None and (len(note) > NOTE_MAX or not note.isprintable()):
        note = " ".join(note.split())  # newlines from a textarea are fine; keep one line
        if len(note) > NOTE_MAX or not note.isprintable():
            raise HTTPException(400, f"note must be printable text up to {NOTE_MAX} characters")
    return action, outcome, note


def _coordinate(form: dict[str, str], key: str, bound: float) -> float:
    try:
        value = float(form[key])
    except (KeyError, ValueError) as err:
        raise HTTPException(400, f"{key} must be a number") from err
    if not math.isfinite(value) or abs(value) > bound:
        raise HTTPException(400, f"{key} out of range")
    return value


def same_origin(request: Request, public_origin: str) -> None:
    """Refuse (403) a request whose ``Origin`` is neither this server nor the public one."""
    origin = request.headers.get("origin")
    if origin is None:  # old browsers, curl: the token alone is the credential
        return
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin not in (own, public_origin):
        raise HTTPException(403, "cross-origin request refused")


def _why(err: IllegalTransition, locale: str) -> str:
    if locale != ZH:
        return str(err)
    return f"当前状态（{err.state}）不能执行该操作。{err}"


_EXPIRED = (
    ("链接已过期", "此报警链接已过期。请查看最新短信中的链接，或联系指挥中心。"),
    ("This link has expired", "Open the link in your latest message or call the command centre."),
)
_FORGED = (
    ("链接无效", "此链接无法验证。请使用短信中的原始链接。"),
    ("Invalid link", "This link could not be verified. Use the link from your message as sent."),
)
UNKNOWN_ALARM = (
    ("找不到该报警", "此报警不存在或已被删除。"),
    ("Alarm not found", "This alarm does not exist or was removed."),
)
