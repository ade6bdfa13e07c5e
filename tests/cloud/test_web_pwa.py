"""The worker's page as a PWA: manifest, service worker, icons, and storing push subscriptions.

Real SQLite registry and lifecycle behind ``LifecycleWorkerDesk``; the browser test runs a
real headless Chromium against a real uvicorn on 127.0.0.1 (a secure context).
"""

from __future__ import annotations

import base64
import json
import os
import struct
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from cloud.lifecycle import AlarmDesk
from cloud.notify.webpush import generate_vapid_keys
from cloud.registry import load_registry
from cloud.registry.store import set_push_subscription, subscription
from cloud.web import LifecycleWorkerDesk, create_app
from cloud.web.pwa import MAX_SUBSCRIPTION_BYTES
from cloud.web.settings import WebSettings, public_key_of
from tests.browser import PNG_MAGIC, chromium
from tests.cloud.test_web_adapter import notified_alarm, seed_registry
from tests.cloud.test_web_support import TWILIO_TOKEN, serve, signer
from tests.support import wait_until

PUBLIC = "https://alarm.example.cn"
KEYS = generate_vapid_keys()
JSON = {"Content-Type": "application/json"}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def browser_subscription(
    endpoint: str = "https://fcm.googleapis.com/fcm/send/abc",
) -> dict[str, Any]:
    """What ``PushSubscription.toJSON()`` gives: a P-256 point and a 16-byte secret."""
    point = generate_vapid_keys().public_key
    return {"endpoint": endpoint, "expirationTime": None,
            "keys": {"p256dh": point, "auth": b64(os.urandom(16))}}  # fmt: skip


class World:
    def __init__(self, db: sa.Engine, alarm_id: int, app: FastAPI) -> None:
        self.db, self.alarm_id, self.app = db, alarm_id, app
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC)

    def token(self, worker: str = "w1", ttl_s: float = 600, alarm: int | None = None) -> str:
        expires = datetime.fromtimestamp(time.time() + ttl_s, UTC)
        return signer().make(worker, str(alarm or self.alarm_id), expires)

    def stored(self, worker: str = "w1") -> str | None:
        return next(w.push_subscription for w in load_registry(self.db).workers if w.id == worker)


def app_for(desk: AlarmDesk, db: sa.Engine, settings: WebSettings | None) -> FastAPI:
    return create_app(
        LifecycleWorkerDesk(desk, db), signer(), twilio_auth_token=TWILIO_TOKEN,
        public_base_url=PUBLIC, clock=time.time, settings=settings,
    )  # fmt: skip


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with notified_alarm(tmp_path, "pwa") as (desk, db, _url, alarm_id):
        w = World(db, alarm_id, app_for(desk, db, WebSettings(vapid_public_key=KEYS.public_key)))
        async with w.client:
            yield w


async def test_manifest_names_the_app_and_its_icons_are_served(world: World) -> None:
    r = await world.client.get("/manifest.webmanifest")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/manifest+json")
    m = r.json()
    assert "街道大脑" in m["name"] and "Street Brain" in m["name"]
    assert (m["display"], m["start_url"], m["scope"]) == ("standalone", "m/", "m/")
    for icon in m["icons"]:
        got = await world.client.get(
            str(httpx.URL(f"{PUBLIC}/manifest.webmanifest").join(icon["src"]))
        )
        assert got.status_code == 200, icon
        assert got.headers["content-type"].startswith(icon["type"])
        if icon["type"] == "image/png":
            assert got.content.startswith(PNG_MAGIC)
            width, height = struct.unpack(">II", got.content[16:24])
            assert f"{width}x{height}" == icon["sizes"]
    assert (await world.client.get("/icon-64.png")).status_code == 404
    start = await world.client.get("/m/", headers={"Accept-Language": "en"})
    assert start.status_code == 200 and "Street Brain" in start.text


async def test_service_worker_is_javascript_that_shows_pushes_and_opens_links(
    world: World,
) -> None:
    r = await world.client.get("/sw.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-content-type-options"] == "nosniff"
    for text in ("'push'", "showNotification", "data.title", "data.body", "data.url",
                 "'notificationclick'", "openWindow"):  # fmt: skip
        assert text in r.text, text


async def test_page_offers_push_with_the_vapid_key_under_a_strict_csp(world: World) -> None:
    r = await world.client.get(f"/m/{world.token()}")
    assert r.status_code == 200
    assert '<link rel="manifest" href="../manifest.webmanifest">' in r.text
    assert f'data-key="{KEYS.public_key}"' in r.text and "接收推送" in r.text
    csp = r.headers["content-security-policy"]
    for part in ("default-src 'none'", "worker-src 'self'", "manifest-src 'self'",
                 "connect-src 'self'"):  # fmt: skip
        assert part in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    en = await world.client.get(f"/m/{world.token('w2')}")
    assert "Enable push" in en.text


async def test_a_valid_subscription_is_stored_on_the_worker(world: World) -> None:
    sub = browser_subscription()
    r = await world.client.post(f"/m/{world.token()}/push", content=json.dumps(sub), headers=JSON)
    assert r.status_code == 204, r.text
    stored = world.stored("w1")
    assert stored is not None and json.loads(stored) == sub
    w1 = next(w for w in load_registry(world.db).workers if w.id == "w1")
    assert subscription(w1) == sub  # what the dispatcher's push channel reads
    assert world.stored("w2") is None
    again = browser_subscription("https://updates.push.services.mozilla.com/wpush/v2/x")
    r = await world.client.post(f"/m/{world.token()}/push", json=again)
    assert r.status_code == 204 and json.loads(world.stored() or "") == again


GOOD = browser_subscription()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        json.dumps({"keys": GOOD["keys"]}).encode(),
        json.dumps({**GOOD, "endpoint": "http://10.0.0.1/x"}).encode(),
        json.dumps({**GOOD, "endpoint": "file:///etc/passwd"}).encode(),
        json.dumps({**GOOD, "endpoint": "https://user:pw@push.example/x"}).encode(),
        json.dumps({**GOOD, "keys": None}).encode(),
        json.dumps({**GOOD, "keys": {"p256dh": GOOD["keys"]["p256dh"]}}).encode(),
        json.dumps({**GOOD, "keys": {**GOOD["keys"], "auth": b64(b"short")}}).encode(),
        json.dumps({**GOOD, "keys": {**GOOD["keys"], "p256dh": b64(b"\x02" + b"x" * 64)}}).encode(),
        json.dumps(
            {**GOOD, "keys": {**GOOD["keys"], "auth": "!!!!" + GOOD["keys"]["auth"]}}
        ).encode(),
        json.dumps({**GOOD, "expirationTime": "soon"}).encode(),
        *(
            json.dumps({**GOOD, "endpoint": where}).encode()
            for where in (
                "https://127.0.0.1/push",
                "https://[::1]:8443/push",
                "https://10.0.0.7/push",
                "https://172.16.5.4/push",
                "https://192.168.1.1/push",
                "https://[fd00::1]/push",
                "https://169.254.169.254/latest/meta-data/",
                "https://[fe80::1]/push",
                "https://0.0.0.0/push",
                "https://localhost/push",
                "https://push.example.net/x",
                "https://fcm.googleapis.com.evil.example/x",
                "https://8.8.8.8/push",
            )
        ),
    ],
)
async def test_garbage_is_400_and_stores_nothing(world: World, body: bytes) -> None:
    r = await world.client.post(f"/m/{world.token()}/push", content=body, headers=JSON)
    assert r.status_code == 400, r.text
    assert world.stored() is None


async def test_a_closed_network_push_service_is_stored_once_configured(tmp_path: Path) -> None:
    own = "https://push.intra.example/wpush/1"
    settings = WebSettings.from_env(
        {
            "GRIDALARM_VAPID_PUBLIC_KEY": KEYS.public_key,
            "GRIDALARM_PUSH_HOSTS": "push.intra.example",
        }
    )
    async with notified_alarm(tmp_path, "pwa-own") as (desk, db, _url, alarm_id):
        w = World(db, alarm_id, app_for(desk, db, settings))
        async with w.client:
            r = await w.client.post(f"/m/{w.token()}/push", json=browser_subscription(own))
            assert r.status_code == 204, r.text
            assert json.loads(w.stored() or "{}")["endpoint"] == own
            mozilla = "https://updates.push.services.mozilla.com/wpush/v2/x"
            r = await w.client.post(f"/m/{w.token()}/push", json=browser_subscription(mozilla))
            assert r.status_code == 204, r.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"endpoint": ' + b"[" * 2000 + b"]" * 2000 + b"}",
        b'{"keys": {"p256dh": ' + b'{"":' * 790 + b"1" + b"}" * 790 + b"}}",
    ],
    ids=["arrays", "objects"],
)
async def test_deeply_nested_json_is_400_and_stores_nothing(world: World, body: bytes) -> None:
    assert len(body) < MAX_SUBSCRIPTION_BYTES
    r = await world.client.post(f"/m/{world.token()}/push", content=body, headers=JSON)
    assert r.status_code == 400, r.text
    assert "nested" in r.text
    assert world.stored() is None


async def test_forged_expired_foreign_and_mistyped_requests_store_nothing(world: World) -> None:
    body = json.dumps(GOOD)
    tok = world.token()
    forged = tok[:-2] + ("AA" if not tok.endswith("AA") else "BB")
    cases = [
        (f"/m/{forged}/push", JSON, 403),
        (f"/m/{world.token(ttl_s=-1)}/push", JSON, 410),
        (f"/m/{world.token(alarm=999)}/push", JSON, 404),
        (f"/m/{tok}/push", {**JSON, "Origin": "https://evil.example"}, 403),
        (f"/m/{tok}/push", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ]
    for path, headers, status in cases:
        r = await world.client.post(path, content=body, headers=headers)
        assert r.status_code == status, (path, headers, r.text)
    big = json.dumps({**GOOD, "pad": "x" * 5000})
    assert (await world.client.post(f"/m/{tok}/push", content=big, headers=JSON)).status_code == 413
    assert world.stored() is None


def test_set_push_subscription_stores_and_clears(tmp_path: Path) -> None:
    db = seed_registry(f"sqlite:///{tmp_path / 'reg.db'}")
    assert set_push_subscription(db, "w1", '{"endpoint":"https://p.example/1"}') is True
    assert set_push_subscription(db, "ghost", "{}") is False
    workers = {w.id: w.push_subscription for w in load_registry(db).workers}
    assert workers == {"w1": '{"endpoint":"https://p.example/1"}', "w2": None}
    assert set_push_subscription(db, "w1", None) is True
    assert all(w.push_subscription is None for w in load_registry(db).workers)
    db.dispose()


def test_vapid_public_key_comes_from_the_private_key() -> None:
    env = {"GRIDALARM_VAPID_PRIVATE_KEY": KEYS.private_key,
           "GRIDALARM_VAPID_SUBJECT": "mailto:ops@example.cn"}  # fmt: skip
    assert public_key_of(KEYS.private_key) == KEYS.public_key
    assert WebSettings.from_env(env).vapid_public_key == KEYS.public_key
    same = {**env, "GRIDALARM_VAPID_PUBLIC_KEY": KEYS.public_key}
    assert WebSettings.from_env(same).vapid_public_key == KEYS.public_key
    other = {**env, "GRIDALARM_VAPID_PUBLIC_KEY": generate_vapid_keys().public_key}
    with pytest.raises(ValueError, match="does not belong"):
        WebSettings.from_env(other)
    assert WebSettings.from_env({}).vapid_public_key is None


@pytest.fixture
def served(world: World) -> Iterator[str]:
    with serve(world.app) as url:
        yield url


def test_the_service_worker_registers_in_headless_chromium(world: World, served: str) -> None:
    """Registration on http://127.0.0.1 (a secure context) is asserted. A real subscription
    needs Chromium's push service (Google FCM), unreachable here: subscribe() then never
    settles, the page gives up after 10 s and says so, and nothing is stored."""
    from selenium.webdriver.common.by import By

    with chromium() as driver:
        driver.get(f"{served}/m/{world.token()}")
        root = driver.find_element(By.TAG_NAME, "html")
        wait_until(lambda: root.get_attribute("data-sw") is not None, 15, "the SW registration")
        assert root.get_attribute("data-sw") == "registered"
        scope = driver.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            "navigator.serviceWorker.ready.then(function (r) {"
            "  done([r.scope, r.active && r.active.scriptURL]); });"
        )
        assert scope == [f"{served}/m/", f"{served}/sw.js"]
        manifest = driver.execute_script("return document.querySelector('link[rel=manifest]').href")
        assert manifest == f"{served}/manifest.webmanifest"
        assert driver.find_element(By.ID, "btn-push").is_displayed()
        driver.execute_cdp_cmd(
            "Browser.grantPermissions", {"origin": served, "permissions": ["notifications"]}
        )
        driver.find_element(By.ID, "btn-push").click()
        section = driver.find_element(By.ID, "push")
        wait_until(lambda: section.get_attribute("data-push") is not None, 30, "push to settle")
        state = section.get_attribute("data-push")
        if state == "subscribed":
            stored = world.stored()
            assert stored is not None and json.loads(stored)["endpoint"].startswith("https://")
        else:  # no push service reachable from here: the page says so, and nothing is stored
            assert state == "failed"
            assert driver.find_element(By.ID, "push-status").text
            assert world.stored() is None
