"""Rendering the console's pages: Jinja2 templates, the locale, and strict response headers."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response
from jinja2 import Environment, PackageLoader, select_autoescape

from cloud.console.compression import compressed

ZH = "zh-CN"
EN = "en"
LANG_COOKIE = "ga_lang"
CHINA_TZ = timezone(timedelta(hours=8), "CST")


def environment() -> Environment:
    """The templates in ``cloud/console/templates``, HTML-escaped."""
    env = Environment(
        loader=PackageLoader("cloud.console", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["clock"] = clock_text
    env.filters["age"] = age_text
    return env


def clock_text(ts: float | None) -> str:
    """Epoch seconds as local (UTC+8) ``MM-DD HH:MM:SS``."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).astimezone(CHINA_TZ).strftime("%m-%d %H:%M:%S")


def age_text(ts: float, now: float | None = None) -> str:
    """How long ago, as ``1h05m`` / ``4m`` / ``30s``."""
    s = max(0, int((now if now is not None else time.time()) - ts))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m" if s >= 60 else f"{s}s"


def locale_of(request: Request) -> str:
    """The console's language: the switch's cookie, else the browser's, zh-CN first."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in (ZH, EN):
        return chosen
    first = request.headers.get("accept-language", "").split(",", 1)[0].strip().lower()
    return EN if first.startswith("en") else ZH


def translator(locale: str) -> Any:
    def t(zh_text: str, en_text: str) -> str:
        return zh_text if locale == ZH else en_text

    return t


def render_text(env: Environment, name: str, locale: str, **context: Any) -> str:
    """A template rendered to text (thread-safe: the live board renders in a thread)."""
    return env.get_template(name).render(locale=locale, t=translator(locale), **context)


def page(
    env: Environment,
    request: Request,
    name: str,
    status: int = 200,
    tile_url: str | None = None,
    **context: Any,
) -> Response:
    """Render *name* with a script nonce and a policy that loads only from this server
    (compressed when the browser takes gzip: a board of hundreds of alarms is large)."""
    nonce = secrets.token_urlsafe(16)
    locale = locale_of(request)
    html = render_text(
        env, name, locale, nonce=nonce, path=request.url.path, tile_url=tile_url, **context
    )
    response = compressed(
        request, html.encode(), "text/html; charset=utf-8", headers(nonce, tile_url)
    )
    response.status_code = status
    return response


def headers(nonce: str, tile_url: str | None = None) -> dict[str, str]:
    """Our own scripts and styles only; tiles from the configured server if any."""
    tiles = ""
    if tile_url is not None:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        tiles = f" {parts.scheme}://{parts.netloc.split('{', 1)[0]}"
    csp = (
        f"default-src 'none'; script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data:{tiles}; connect-src 'self'; form-action 'self'; "
        "font-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }
