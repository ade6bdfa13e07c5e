"""The worker's page in a real headless Chromium: take the alarm, see it, share a position."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.lifecycle import State
from tests.browser import PNG_MAGIC, allow_geolocation, chromium, screenshot
from tests.cloud.test_web_support import FakeDesk, app_for, serve, token
from tests.support import wait_until


@pytest.fixture
def desk() -> FakeDesk:
    return FakeDesk()


@pytest.fixture
def base_url(desk: FakeDesk) -> Iterator[str]:
    with serve(app_for(desk, "https://alarm.example.cn")) as url:
        yield url


def test_take_in_the_browser(base_url: str, desk: FakeDesk, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    with chromium() as driver:
        allow_geolocation(driver, base_url, 24.4931, 118.1201)
        driver.get(f"{base_url}/m/{token()}")
        assert driver.find_element(By.ID, "state").get_attribute("data-state") == "notified"
        assert "疑似火警 包饼店" in driver.title
        call = driver.find_element(By.ID, "call-owner").get_attribute("href")
        assert call == "tel:+8659212345678"
        wait_until(lambda: bool(desk.positions), 10, "the page to share its position")
        assert desk.positions[0][:3] == ("w1", pytest.approx(24.4931), pytest.approx(118.1201))

        driver.find_element(By.ID, "btn-take").click()
        wait_until(
            lambda: state_of(driver) == "acknowledged", 10, "the page to show the alarm taken"
        )
        assert desk.state(41) is State.ACKNOWLEDGED
        assert driver.current_url == f"{base_url}/m/{token()}"
        assert driver.find_element(By.ID, "btn-arrive").is_displayed()
        kinds = [li.get_attribute("data-kind")
                 for li in driver.find_elements(By.CSS_SELECTOR, "#history li")]  # fmt: skip
        assert kinds == ["raised", "notified", "acknowledged"]
        png = screenshot(driver, tmp_path / "taken.png")
    assert len(png) > 1000 and png.startswith(PNG_MAGIC)


def test_resolve_with_outcome_and_note_in_the_browser(base_url: str, desk: FakeDesk) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with chromium() as driver:
        driver.get(f"{base_url}/m/{token('w2', '42')}")
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
        Select(driver.find_element(By.ID, "outcome")).select_by_value("device_fault")
        driver.find_element(By.ID, "note").send_keys("cover sensor loose")
        driver.find_element(By.ID, "btn-resolve").click()
        wait_until(
            lambda: state_of(driver) == "resolved",
            10,
            "the page to show the alarm resolved",
        )
        assert "Device fault" in driver.find_element(By.ID, "state").text
    a = desk.alarms[42]
    assert (a.state, a.outcome, a.history[-1].note) == (
        State.RESOLVED, "device_fault", "cover sensor loose"
    )  # fmt: skip


def state_of(driver: object) -> str | None:
    """The page's alarm state; None while the form post navigates (the old element goes stale)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return driver.find_element(By.ID, "state").get_attribute("data-state")  # type: ignore[attr-defined, no-any-return]
    except (StaleElementReferenceException, NoSuchElementException):
        return None
