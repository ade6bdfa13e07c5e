"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by selenium.

Missing Chromium or selenium skips on a developer's machine and fails under ``CI=true``.
The browser runs with a fresh profile and with background networking off, so a test touches
nothing but the loopback server it is pointed at.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support import need_service

CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # we run as root in a container
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",  # small /dev/shm in containers
    "--window-size=412,915",  # a phone
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def chromium_binary() -> str | None:
    """Path of the Chromium binary, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def chromium() -> Iterator[Any]:
    """A selenium ``webdriver.Chrome`` on a fresh profile; quits and removes it on exit."""
    binary = chromium_binary()
    if binary is None or not Path(CHROMEDRIVER).exists():
        need_service("chromium and chromium-driver (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        need_service("selenium (pip install selenium)")
    profile = tempfile.mkdtemp(prefix="gridalarm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(binary)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def allow_geolocation(driver: Any, origin: str, lat: float, lon: float) -> None:
    """Grant *origin* the geolocation permission and make the browser report *lat*, *lon*."""
    driver.execute_cdp_cmd(
        "Browser.grantPermissions", {"origin": origin, "permissions": ["geolocation"]}
    )
    driver.execute_cdp_cmd(
        "Emulation.setGeolocationOverride", {"latitude": lat, "longitude": lon, "accuracy": 10}
    )


def screenshot(driver: Any, path: Path) -> bytes:
    """Save a PNG screenshot to *path* and return its bytes."""
    driver.save_screenshot(str(path))
    return path.read_bytes()
