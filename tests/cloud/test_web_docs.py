"""The API docs in a real headless Chromium: Swagger UI renders our schema from files this
server serves, and the page asks nothing of any other host."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.browser import chromium
from tests.cloud.test_web_support import FakeDesk, app_for, serve
from tests.support import wait_until


@pytest.fixture
def base_url() -> Iterator[str]:
    with serve(app_for(FakeDesk())) as url:
        yield url


def test_swagger_ui_renders_offline(base_url: str) -> None:
    from selenium.webdriver.common.by import By

    with chromium() as driver:
        driver.get(f"{base_url}/docs")
        wait_until(
            lambda: bool(driver.find_elements(By.CSS_SELECTOR, ".opblock")), 20,
            "Swagger UI to render the operations",
        )  # fmt: skip
        paths = {e.text for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert "/healthz" in paths
        loaded = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
    hosts = {urlsplit(u).netloc for u in loaded}
    assert hosts == {urlsplit(base_url).netloc}, loaded
    assert any(u.endswith("/openapi.json") for u in loaded)
    assert any(u.endswith("/docs/assets/swagger-ui-bundle.js") for u in loaded)
