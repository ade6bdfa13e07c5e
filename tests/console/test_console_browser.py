"""The console in a real headless Chromium over a real cloud (simulator → gateway → Mosquitto →
cloud → Twilio stand-in), the network limited to this machine.

The board shows a triggered alarm within 2 s without a reload; the detail shows its
timeline; taking it on the worker's phone page moves it on the board; the map draws grid
polygons and device markers; a viewer cannot resolve; a form post without the CSRF token is
refused. Screenshots of the board, detail, KPI, map and phone pages are kept as artifacts.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cloud.console.users import Role, add_user
from cloud.lifecycle.tables import lifecycle_alarms
from gridalarm.brokers import Mosquitto
from rigs.standins.twilio_api import TwilioStandin
from tests.console.playwright_chromium import artifacts, chromium, new_context
from tests.integration.test_dispatch import loop_rig
from tests.support import until

pytestmark = pytest.mark.integration

PASSWORD = "console password 1"
WALL = {"width": 1600, "height": 900}
PHONE = {"width": 412, "height": 915}
LINK = re.compile(r"https?://\S+/m/\S+")


async def sign_in(context: Any, base: str, name: str) -> Any:
    page = await context.new_page()
    await page.goto(f"{base}/")  # the root leads to the console, then to its sign-in
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#board-rows", state="attached", timeout=10_000)
    return page


def alarm_ids(db: sa.Engine) -> list[int]:
    with db.connect() as conn:
        return list(conn.execute(sa.select(lifecycle_alarms.c.alarm_id)).scalars())


async def test_console_in_chromium(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shots = artifacts()
    with TwilioStandin() as twilio:
        async with loop_rig(broker, tmp_path, monkeypatch, twilio) as (sims, cloud, base):
            for name, role in (("disp", Role.DISPATCHER), ("view", Role.VIEWER)):
                add_user(cloud.db, name, PASSWORD, role)
            async with chromium() as (browser, blocked):
                wall = await new_context(browser, blocked, viewport=WALL, locale="zh-CN")
                board = await sign_in(wall, base, "disp")
                assert await board.locator("#board-rows tr.row").count() == 0

                aid = await _raise_and_follow(sims, cloud, board, wall, base, shots)
                await _take_on_the_phone(browser, blocked, twilio, shots)
                await board.locator(f'#alarm-{aid}[data-state="acknowledged"]').wait_for(
                    timeout=5000
                )

                await _map_draws_grids_and_devices(wall, base, shots)
                device = await wall.new_page()
                await device.goto(f"{base}/console/devices/smk-0001")
                await device.wait_for_selector("#chart[data-ready]", timeout=10_000)
                kpis = await wall.new_page()
                await kpis.goto(f"{base}/console/kpis")
                assert "发生数" in await kpis.inner_text("#kpi-per_day")
                await kpis.screenshot(path=str(shots / "console-kpis.png"), full_page=True)

                await _viewer_cannot_resolve(browser, blocked, base, aid)
                no_token = await wall.request.post(
                    f"{base}/console/alarms/{aid}/resolve",
                    form={"outcome": "real", "note": "no token"},
                    max_redirects=0,
                )
                assert no_token.status == 403
                await wall.close()
                assert blocked.urls == []
            with cloud.db.connect() as conn:
                state = conn.execute(
                    sa.select(lifecycle_alarms.c.state).where(lifecycle_alarms.c.alarm_id == aid)
                ).scalar_one()
            assert state == "acknowledged"  # neither the viewer nor the token-less post resolved it


async def _take_on_the_phone(
    browser: Any, blocked: Any, twilio: TwilioStandin, shots: Path
) -> None:
    sms = await until(lambda: [m for m in twilio.messages if LINK.search(m["body"])], 10, "an SMS")
    link = LINK.search(sms[0]["body"])
    assert link is not None
    phone = await new_context(browser, blocked, viewport=PHONE, locale="zh-CN", is_mobile=True)
    page = await phone.new_page()
    await page.goto(link.group(0))
    await page.click("#btn-take")
    await page.wait_for_selector('#state[data-state="acknowledged"]', timeout=10_000)
    await page.screenshot(path=str(shots / "phone-page.png"), full_page=True)
    await phone.close()


async def _map_draws_grids_and_devices(context: Any, base: str, shots: Path) -> None:
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{base}/console/map")
    await page.wait_for_selector("#map[data-devices]", timeout=10_000)
    assert await page.get_attribute("#map", "data-grids") == "2"
    assert await page.get_attribute("#map", "data-alarms") == "1"
    polygons = await page.locator("#map path.leaflet-interactive").count()
    markers = await page.locator("#map .leaflet-marker-icon").count()
    assert polygons >= 2 and markers >= 1, (polygons, markers)
    assert errors == []
    await page.screenshot(path=str(shots / "console-map.png"))


async def _viewer_cannot_resolve(browser: Any, blocked: Any, base: str, aid: int) -> None:
    context = await new_context(browser, blocked, viewport=WALL)
    await sign_in(context, base, "view")
    page = await context.new_page()
    await page.goto(f"{base}/console/alarms/{aid}")
    assert await page.locator("#resolve-form").count() == 0
    token = await page.get_attribute("input[name=csrf]", "value")  # the sign-out form's
    refused = await context.request.post(
        f"{base}/console/alarms/{aid}/resolve",
        form={"csrf": token or "", "outcome": "false_alarm", "note": ""},
        max_redirects=0,
    )
    assert refused.status == 403
    await context.close()


async def _raise_and_follow(
    sims: Any, cloud: Any, board: Any, wall: Any, base: str, shots: Path
) -> int:
    """Trigger a smoke detector: its row is pushed to the open board within 2 s with a beep
    (the sound is on), the filters hide it, and its detail page shows the timeline and the
    readings chart."""
    await board.check("#sound")
    sims.device("smk-0001").trigger("smoke")
    raised = await until(lambda: alarm_ids(cloud.db), 15, "the alarm in the lifecycle")
    t_raised = time.monotonic()
    aid = raised[0]
    row = board.locator(f"#alarm-{aid}")
    await row.wait_for(state="visible", timeout=2000)  # pushed, no reload
    shown_after = time.monotonic() - t_raised
    assert shown_after < 2.0, shown_after
    assert await row.get_attribute("data-severity") == "critical"
    await board.wait_for_function("window.gridalarmBeeps >= 1", timeout=2000)
    await board.select_option('select[data-filter="grid"]', "grid-2")
    await row.wait_for(state="hidden", timeout=2000)
    assert board.url.endswith("#grid=grid-2")
    await board.select_option('select[data-filter="grid"]', "")
    await row.wait_for(state="visible", timeout=2000)
    await board.screenshot(path=str(shots / "console-board.png"), full_page=True)

    detail = await wall.new_page()
    await detail.goto(f"{base}/console/alarms/{aid}")
    await detail.wait_for_selector("#timeline li.kind-message", timeout=10_000)
    timeline = await detail.inner_text("#timeline")
    assert "smk-0001" in await detail.inner_text(".alarm-head")
    assert "sms" in timeline or "console" in timeline
    await detail.wait_for_selector("#chart[data-ready]", timeout=10_000)
    await detail.screenshot(path=str(shots / "console-detail.png"), full_page=True)

    return aid
