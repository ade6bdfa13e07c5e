"""The page as a PWA: manifest, service worker, icons, and ``POST /m/{token}/push``.

The push endpoint stores the browser's subscription on the worker the token names, so the
dispatcher's push channel can reach her; like the page's actions it is POST-only, same-origin
and keyed by the signed token alone.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from jinja2 import Environment

from cloud.lifecycle import UnknownAlarm
from cloud.notify import LinkSigner, PushEndpointRefused, PushServices
from cloud.web import pwa_assets
from cloud.web.forms import read_body
from cloud.web.nesting import MAX_JSON_DEPTH, too_deep
from cloud.web.page import UNKNOWN_ALARM, Refused, same_origin, scope_checker
from cloud.web.protocols import RegistryDesk, WorkerDesk
from cloud.web.render import page, pick_locale

logger = logging.getLogger(__name__)

MAX_SUBSCRIPTION_BYTES = 4096  # a browser's subscription JSON is ~400 bytes
JSON_TYPE = "application/json"
ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
SW_CSP = "default-src 'none'; img-src 'self'"
BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def router(
    desk: WorkerDesk, signer: LinkSigner, env: Environment, clock: Callable[[], float],
    public_origin: str, *, push_services: PushServices | None = None,
) -> APIRouter:  # fmt: skip
    """Manifest, service worker and icons always; the push endpoint when *desk* can store,
    for subscriptions whose endpoint is one of *push_services* (default: the known ones)."""
    services = push_services or PushServices()
    r = APIRouter()
    scope = scope_checker(desk, signer, clock)

    @r.get("/manifest.webmanifest", name="manifest")
    async def manifest() -> Response:
        body = json.dumps(pwa_assets.MANIFEST, ensure_ascii=False)
        return Response(body, media_type="application/manifest+json", headers=ASSET_HEADERS)

    @r.get("/sw.js", name="service_worker")
    async def service_worker() -> Response:
        # Served from the root: its default maximum scope covers /m/, where the page registers
        # it. no-cache makes browsers revalidate, so a fixed worker reaches phones at once.
        headers = {**ASSET_HEADERS, "Content-Security-Policy": SW_CSP}
        return Response(pwa_assets.SERVICE_WORKER_JS, media_type="text/javascript", headers=headers)

    @r.get("/icon.svg", name="icon_svg")
    async def icon_svg() -> Response:
        return Response(pwa_assets.ICON_SVG, media_type="image/svg+xml", headers=ASSET_HEADERS)

    @r.get("/icon-{size}.png", name="icon_png")
    async def icon_png(size: int) -> Response:
        if size not in pwa_assets.PNG_SIZES:
            raise HTTPException(404, "no such icon")
        return Response(pwa_assets.icon_png(size), media_type="image/png", headers=ASSET_HEADERS)

    @r.get("/m/", name="pwa_start")
    async def start(request: Request) -> Response:
        """The installed app's start page: alarms arrive as links and notifications."""
        locale = pick_locale(None, request.headers.get("accept-language"))
        return page(env, "start.html", 200, locale=locale)

    @r.post("/m/{token}/push", status_code=204, name="alarm_push")
    async def subscribe(request: Request, token: str) -> Response:
        same_origin(request, public_origin)
        s = await scope(request, token)
        if not isinstance(desk, RegistryDesk):
            raise HTTPException(404, "push subscriptions are not stored by this server")
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != JSON_TYPE:
            raise HTTPException(415, f"expected {JSON_TYPE}")
        try:
            body = await read_body(request, MAX_SUBSCRIPTION_BYTES)
            subscription = parse_subscription(body, services)
        except HTTPException as err:
            logger.info("worker %s: push subscription refused: %s", s.worker_id, err.detail)
            raise
        try:
            await desk.view(s.alarm_id)  # a token for a vanished alarm is no credential
        except UnknownAlarm as err:
            raise Refused(404, *UNKNOWN_ALARM, s.locale) from err
        if not await desk.set_push_subscription(s.worker_id, subscription):
            raise HTTPException(404, "no such worker")
        logger.info("worker %s: push subscription stored (alarm %d)", s.worker_id, s.alarm_id)
        return Response(status_code=204)

    return r


def parse_subscription(body: bytes, services: PushServices) -> str:
    """A browser's ``PushSubscription.toJSON()`` as canonical JSON; 400 for anything else,
    an endpoint that is not one of *services* included."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise HTTPException(400, "subscription is not UTF-8 JSON") from err
    if too_deep(text):
        raise HTTPException(400, f"subscription JSON is nested deeper than {MAX_JSON_DEPTH}")
    try:
        value: Any = json.loads(text)
    except ValueError as err:
        raise HTTPException(400, "subscription is not UTF-8 JSON") from err
    if not isinstance(value, dict):
        raise HTTPException(400, "subscription must be a JSON object")
    endpoint, keys = value.get("endpoint"), value.get("keys")
    if not isinstance(endpoint, str):
        raise HTTPException(400, "endpoint must be an https URL")
    try:
        services.check(endpoint)
    except PushEndpointRefused as err:
        raise HTTPException(400, str(err)) from err
    if not isinstance(keys, dict):
        raise HTTPException(400, "keys must be an object with p256dh and auth")
    p256dh = _key(keys, "p256dh", 65)
    if not p256dh.startswith(b"\x04"):
        raise HTTPException(400, "keys.p256dh must be an uncompressed P-256 point")
    _key(keys, "auth", 16)
    expires = value.get("expirationTime")
    if expires is not None and (not isinstance(expires, int | float) or isinstance(expires, bool)):
        raise HTTPException(400, "expirationTime must be a number or null")
    clean = {
        "endpoint": endpoint,
        "expirationTime": expires,
        "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]},
    }
    return json.dumps(clean, sort_keys=True, separators=(",", ":"))


def _key(keys: dict[str, Any], name: str, length: int) -> bytes:
    text = keys.get(name)
    try:
        if not isinstance(text, str) or not BASE64URL.fullmatch(text):
            raise ValueError(name)
        bare = text.rstrip("=")
        raw = base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except (ValueError, binascii.Error) as err:
        raise HTTPException(400, f"keys.{name} must be base64url") from err
    if len(raw) != length:
        raise HTTPException(400, f"keys.{name} must be {length} bytes")
    return raw
