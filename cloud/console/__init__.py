"""The command-centre console: board, map, alarm detail and actions, KPIs, staff accounts.

``console_router`` builds its routes over the desk and the cloud database; the desk's
after-commit hook feeds the live board, so nothing polls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from sqlalchemy.engine import Engine

from cloud.console import alarm_pages, assets, auth, pages
from cloud.console.config import ConsoleConfig
from cloud.console.live import BoardFeed
from cloud.console.render import environment
from cloud.console.site import RecentReadings, Site
from cloud.console.tables import create_console_tables
from cloud.lifecycle import AlarmDesk

PREFIX = "/console"

__all__ = ["PREFIX", "ConsoleConfig", "attach_console", "console_router"]


def console_router(
    desk: AlarmDesk,
    db: Engine,
    *,
    origin: str,
    readings: Any = None,
    config: ConsoleConfig | None = None,
    clock: Callable[[], float] = time.time,
) -> APIRouter:
    """The console's routes under ``/console``; *origin* is the public URL's scheme and host
    (cookies are Secure when it is https); *readings* a sink with ``recent`` (else no chart)."""
    config = config or ConsoleConfig()
    create_console_tables(db)
    if assets.missing():
        raise RuntimeError(f"console assets not installed: {assets.missing()}")
    env = environment()
    gate = auth.Gate(db, prefix=PREFIX, origin=origin, ttl_s=config.session_ttl_s, clock=clock)
    chart: RecentReadings | None = readings if hasattr(readings, "recent") else None
    site = Site(db, desk, gate, env, config, clock, PREFIX, BoardFeed(lambda _l: ""), chart)
    site.feed = BoardFeed(lambda locale: pages.board_rows(site, locale))
    desk.after_commit.append(site.feed.kick)
    api = APIRouter()
    api.include_router(assets.router(PREFIX))
    api.include_router(auth.router(gate, env))
    api.include_router(alarm_pages.router(site))
    api.include_router(pages.router(site))
    return api


def attach_console(
    app: FastAPI,
    desk: AlarmDesk,
    db: Engine,
    *,
    public_base_url: str,
    readings: Any = None,
    config: ConsoleConfig | None = None,
) -> None:
    """Serve the console from *app* under ``/console``, the web root leading there."""
    parts = urlsplit(public_base_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    app.include_router(console_router(desk, db, origin=origin, readings=readings, config=config))

    async def root() -> RedirectResponse:
        return RedirectResponse(PREFIX + "/", status_code=303)

    app.add_api_route("/", root, methods=["GET"], include_in_schema=False)
