"""Jinja2 rendering for the worker's page: locale, navigation links, safe response headers."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from cloud.web.protocols import Place

ZH = "zh-CN"
EN = "en"
CHINA_TZ = timezone(timedelta(hours=8), "CST")  # the street offices' clock: no DST


def environment() -> Environment:
    """The templates shipped in ``cloud/web/templates`` (package data), HTML-escaped."""
    env = Environment(
        loader=PackageLoader("cloud.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["clock"] = clock_text
    return env


def pick_locale(worker_locale: str | None, accept_language: str | None) -> str:
    """The worker's own locale, else the browser's first choice between zh and en (zh wins)."""
    if worker_locale in (ZH, EN):
        return worker_locale
    for part in (accept_language or "").split(","):
        tag = part.split(";", 1)[0].strip().lower()
        if tag.startswith("en"):
            return EN
        if tag.startswith("zh"):
            return ZH
    return ZH


def clock_text(ts: float) -> str:
    """Epoch seconds as local (UTC+8) ``MM-DD HH:MM``."""
    return datetime.fromtimestamp(ts, UTC).astimezone(CHINA_TZ).strftime("%m-%d %H:%M")


def nav_links(place: Place, label: str) -> dict[str, str]:
    """Navigation app links for the pin (plain links: nothing is fetched by the page)."""
    lat, lon = f"{place.lat:.6f}", f"{place.lon:.6f}"
    name = label or f"{lat},{lon}"
    amap = urlencode(
        {"position": f"{lon},{lat}", "name": name, "coordinate": "wgs84", "callnative": "1"}
    )
    baidu = urlencode(
        {
            "location": f"{lat},{lon}", "title": name, "content": name, "output": "html",
            "coord_type": "wgs84", "src": "gridalarm",
        }
    )  # fmt: skip
    return {
        "geo": f"geo:{lat},{lon}?q={lat},{lon}({quote(name, safe='')})",
        "amap": f"https://uri.amap.com/marker?{amap}",
        "baidu": f"https://api.map.baidu.com/marker?{baidu}",
    }


def page(env: Environment, name: str, status: int, **context: Any) -> HTMLResponse:
    """Render *name* with a fresh script nonce and headers that keep the token private."""
    nonce = secrets.token_urlsafe(16)
    zh = context.get("locale") == ZH

    def t(zh_text: str, en_text: str) -> str:
        return zh_text if zh else en_text

    html = env.get_template(name).render(nonce=nonce, t=t, **context)
    return HTMLResponse(html, status_code=status, headers=security_headers(nonce))


def security_headers(nonce: str) -> dict[str, str]:
    """No third-party loads, no referrer to others (the URL is the credential), no caching.

    ``same-origin`` rather than ``no-referrer``: with the latter Chromium sends ``Origin: null``
    on our own form posts, and the page's origin check could not tell them from a sandbox.
    """
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        f"script-src 'nonce-{nonce}'; connect-src 'self'; form-action 'self'; "
        "manifest-src 'self'; worker-src 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
