"""Debian's Chromium driven by Playwright for Python, the network limited to this machine.

Browser downloads are impossible here, so Playwright launches ``/usr/bin/chromium``. Any
request to a host other than 127.0.0.1 / localhost is aborted and counted. A missing
Chromium or Playwright skips on a developer's machine and fails under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.support import need_service

LOCAL = ("127.0.0.1", "localhost")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update"]  # fmt: skip


def artifacts() -> Path:
    """Where screenshots go: $GRIDALARM_ARTIFACTS, else tests/artifacts (git-ignored)."""
    where = Path(os.environ.get("GRIDALARM_ARTIFACTS") or Path(__file__).parents[1] / "artifacts")
    where.mkdir(parents=True, exist_ok=True)
    return where


class Blocked:
    """The requests the browser tried to make off this machine."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    async def route(self, route: Any) -> None:
        if urlsplit(route.request.url).hostname in LOCAL:
            await route.continue_()
        else:
            self.urls.append(route.request.url)
            await route.abort()


@asynccontextmanager
async def chromium() -> AsyncIterator[tuple[Any, Blocked]]:
    """(a Playwright Browser, what it was stopped from fetching)."""
    binary = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(binary).exists():
        need_service("chromium (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        need_service("playwright (pip install playwright)")
    blocked = Blocked()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=binary, args=ARGS)
        try:
            yield browser, blocked
        finally:
            await browser.close()


async def new_context(browser: Any, blocked: Blocked, **options: Any) -> Any:
    """A fresh context (its own cookies) with the network lock on."""
    context = await browser.new_context(**options)
    await context.route("**/*", blocked.route)
    return context
