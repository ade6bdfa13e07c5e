"""The worker's page over ASGI: rendering, tokens, actions, refusals that change nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from cloud.lifecycle import Outcome, State
from cloud.web import BrigadeNote
from tests.cloud.test_web_support import NOW, FakeDesk, app_for, token

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def desk() -> FakeDesk:
    return FakeDesk()


@pytest.fixture
async def client(desk: FakeDesk) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_for(desk))
    async with httpx.AsyncClient(transport=transport, base_url="https://alarm.example.cn") as c:
        yield c


async def test_page_in_chinese_shows_what_where_whom_and_history(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get(f"/m/{token()}")
    assert r.status_code == 200
    html = r.text
    assert '<html lang="zh-CN">' in html
    for text in ("疑似火警 包饼店", "smk-0042", "叶厝社区 湖滨路 12 号", "7号楼", "接单", "误报",
                 "真实警情", "设备故障", "测试", "处置完毕"):  # fmt: skip
        assert text in html, text
    assert 'href="tel:+8659212345678"' in html
    assert 'href="geo:24.492100,118.123400?q=24.492100,118.123400(' in html
    assert "https://uri.amap.com/marker?position=118.123400%2C24.492100" in html
    assert "https://api.map.baidu.com/marker?location=24.492100%2C118.123400" in html
    assert re.findall(r'data-kind="(\w+)"', html) == ["raised", "notified"]
    assert 'id="btn-arrive"' not in html  # only what the state allows is offered


async def test_page_in_english_for_an_english_worker(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/m/{token('w2', '42')}")
    assert r.status_code == 200
    assert '<html lang="en">' in r.text
    for text in ("Manhole cover moved", "Take it", "False alarm", "no registered location"):
        assert text in r.text, text


async def test_page_loads_nothing_from_elsewhere_and_leaks_no_referrer(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get(f"/m/{token()}")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["cache-control"] == "no-store"
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)="https?:', r.text)
    nonce = re.search(r"script-src 'nonce-([^']+)'", csp)
    assert nonce is not None and f'<script nonce="{nonce[1]}">' in r.text


@pytest.mark.parametrize(
    ("tok", "status", "text"),
    [
        (token(expires_in_s=-1), 410, "链接已过期"),
        (token(expires_in_s=-1, worker="w2", alarm="42"), 410, "This link has expired"),
        (token()[:-2] + ("AA" if not token().endswith("AA") else "BB"), 403, "链接无效"),
        ("not-a-token", 403, "链接无效"),
        ("x" * 600, 403, "链接无效"),
        (token(alarm="999"), 404, "找不到该报警"),
        (token(alarm="bakery"), 404, "找不到该报警"),
        (token(worker="ghost"), 404, "找不到该报警"),
    ],
    ids=[
        "expired-zh",
        "expired-en",
        "forged",
        "malformed",
        "too-long",
        "unknown-alarm",
        "non-numeric-alarm",
        "unknown-worker",
    ],
)
async def test_bad_tokens_get_a_friendly_page_and_change_nothing(
    client: httpx.AsyncClient, desk: FakeDesk, tok: str, status: int, text: str
) -> None:
    r = await client.get(f"/m/{tok}")
    assert (r.status_code, text in r.text) == (status, True)
    r = await client.post(f"/m/{tok}/action", content="action=take", headers=FORM)
    assert r.status_code == status
    r = await client.post(f"/m/{tok}/position", content="lat=1&lon=2", headers=FORM)
    assert r.status_code == status
    assert (desk.state(41), desk.state(42), desk.positions) == (State.NOTIFIED, State.NOTIFIED, [])


async def test_take_arrive_resolve_through_the_page(
    client: httpx.AsyncClient, desk: FakeDesk
) -> None:
    tok = token()
    r = await client.post(f"/m/{tok}/action", content="action=take", headers=FORM)
    assert r.status_code == 303
    assert httpx.URL(f"https://alarm.example.cn/m/{tok}/action").join(r.headers["location"]).path \
        == f"/m/{tok}"  # fmt: skip
    assert desk.state(41) is State.ACKNOWLEDGED
    r = await client.get(f"/m/{tok}")
    assert 'data-state="acknowledged"' in r.text and 'id="btn-arrive"' in r.text
    await client.post(f"/m/{tok}/action", content="action=arrive", headers=FORM)
    assert desk.state(41) is State.ON_SITE
    body = "action=resolve&outcome=real&note=%E6%B2%B9%E7%83%9F+oil+smoke%0D%0Aall+fine"
    r = await client.post(f"/m/{tok}/action", content=body, headers=FORM)
    assert r.status_code == 303
    a = desk.alarms[41]
    assert (a.state, a.outcome) == (State.RESOLVED, Outcome.REAL)
    last = a.history[-1]
    assert (last.kind, last.actor, last.channel, last.note) == (
        "resolved",
        "w1",
        "web",
        "油烟 oil smoke all fine",
    )
    r = await client.get(f"/m/{tok}")
    assert 'id="actions"' not in r.text and "<script" not in r.text


async def test_false_alarm_button_closes_as_false_alarm(
    client: httpx.AsyncClient, desk: FakeDesk
) -> None:
    r = await client.post(f"/m/{token()}/action", content="action=false_alarm", headers=FORM)
    assert r.status_code == 303
    assert desk.alarms[41].outcome is Outcome.FALSE_ALARM


async def test_illegal_transition_is_409_with_the_reason_and_changes_nothing(
    client: httpx.AsyncClient, desk: FakeDesk
) -> None:
    r = await client.post(f"/m/{token()}/action", content="action=arrive", headers=FORM)
    assert r.status_code == 409
    assert 'id="problem"' in r.text and "acknowledge it first" in r.text
    assert desk.state(41) is State.NOTIFIED
    assert len(desk.alarms[41].history) == 2


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ("action=take&alarm_id=42", FORM, 400),  # no field can name another alarm
        ("action=take&action=take", FORM, 400),
        ("action=explode", FORM, 400),
        ("action=resolve&outcome=arson", FORM, 400),
        ("action=resolve&outcome=real&note=" + "x" * 501, FORM, 400),
        ("action=resolve&outcome=real&note=%00", FORM, 400),
        ("action=take&note=%ff%fe", FORM, 400),
        ('{"action": "take"}', {"Content-Type": "application/json"}, 415),
        ("action=take&note=" + "x" * 20_000, FORM, 413),
        ("action=take", {**FORM, "Origin": "https://evil.example"}, 403),
        ("action=take", {**FORM, "Origin": "null"}, 403),
    ],
    ids=[
        "other-alarm-field",
        "repeated",
        "bad-action",
        "bad-outcome",
        "long-note",
        "nul-note",
        "not-utf8",
        "json",
        "huge",
        "cross-origin",
        "null-origin",
    ],
)
async def test_hostile_actions_are_refused_and_change_nothing(
    client: httpx.AsyncClient, desk: FakeDesk, body: str, headers: dict[str, str], status: int
) -> None:
    r = await client.post(f"/m/{token()}/action", content=body, headers=headers)
    assert r.status_code == status
    assert (desk.state(41), desk.state(42)) == (State.NOTIFIED, State.NOTIFIED)


async def test_huge_chunked_body_is_refused(client: httpx.AsyncClient, desk: FakeDesk) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"action=take&note="
        for _ in range(100):
            yield b"x" * 1024

    r = await client.post(f"/m/{token()}/action", content=chunks(), headers=FORM)
    assert r.status_code == 413
    assert desk.state(41) is State.NOTIFIED


async def test_state_changes_need_post(client: httpx.AsyncClient, desk: FakeDesk) -> None:
    r = await client.get(f"/m/{token()}/action", params={"action": "take"})
    assert r.status_code == 405
    assert desk.state(41) is State.NOTIFIED


async def test_position_is_recorded_with_the_server_clock(
    client: httpx.AsyncClient, desk: FakeDesk
) -> None:
    r = await client.post(f"/m/{token()}/position", content="lat=24.5&lon=118.1", headers=FORM)
    assert r.status_code == 204
    assert desk.positions == [("w1", 24.5, 118.1, NOW)]


@pytest.mark.parametrize(
    "body",
    [
        "lat=91&lon=0",
        "lat=0&lon=-180.5",
        "lat=nan&lon=1",
        "lat=1",
        "lat=a&lon=b",
        "lat=1&lon=2&worker=w2",
    ],
)
async def test_bad_positions_are_refused(
    client: httpx.AsyncClient, desk: FakeDesk, body: str
) -> None:
    r = await client.post(f"/m/{token()}/position", content=body, headers=FORM)
    assert r.status_code == 400
    assert desk.positions == []


async def test_healthz(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


async def test_confirm_fire_is_offered_on_site_once(client: httpx.AsyncClient, desk: FakeDesk):
    tok = token()
    html = (await client.get(f"/m/{tok}")).text
    assert 'id="btn-verify"' not in html  # not on site yet
    assert 'id="brigade"' not in html  # the brigade has said nothing
    for action in ("take", "arrive"):
        await client.post(f"/m/{tok}/action", content=f"action={action}", headers=FORM)
    html = (await client.get(f"/m/{tok}")).text
    assert 'id="btn-verify"' in html and "确认火情" in html
    r = await client.post(f"/m/{tok}/action", content="action=verify", headers=FORM)
    assert r.status_code == 303
    a = desk.alarms[41]
    assert a.verified and (a.history[-1].kind, a.history[-1].channel) == ("verified", "web")
    assert a.state is State.ON_SITE  # confirming keeps the alarm open
    html = (await client.get(f"/m/{tok}")).text
    assert 'id="btn-verify"' not in html and 'data-kind="verified"' in html


async def test_the_brigades_latest_status_and_its_requests_show_by_locale(
    client: httpx.AsyncClient, desk: FakeDesk
) -> None:
    notes = (
        BrigadeNote(NOW - 50, "思明消防", "status", "received"),
        BrigadeNote(NOW - 40, "思明消防", "request", text="钥匙持有人多久到？"),
        BrigadeNote(NOW - 30, "思明消防", "status", "dispatched", eta_s=350),
    )
    for aid in (41, 42):
        desk.alarms[aid] = replace(desk.alarms[aid], brigade=notes)
    zh = (await client.get(f"/m/{token()}")).text
    en = (await client.get(f"/m/{token('w2', '42')}")).text
    assert 'data-status="dispatched"' in zh and "消防已出动" in zh and "预计6 分钟到达" in zh
    assert "消防已接警" not in zh  # only the latest status
    assert "钥匙持有人多久到？" in zh and "询问：" in zh
    assert "brigade dispatched" in en and "ETA 6 min" in en and "asks: " in en
