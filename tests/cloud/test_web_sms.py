"""Twilio's SMS webhook on a real uvicorn server, signed as Twilio signs (RequestValidator)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from xml.etree import ElementTree as ET

import httpx
import pytest
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from cloud.lifecycle import Outcome, State
from cloud.web import WebSettings, create_app
from tests.cloud.test_web_support import (
    NOW,
    TWILIO_TOKEN,
    W1_PHONE,
    W2_PHONE,
    FakeDesk,
    app_for,
    serve,
    signer,
)

PUBLIC = "https://alarm.example.cn"  # what Twilio was given; a proxy forwards to uvicorn


@pytest.fixture
def desk() -> FakeDesk:
    return FakeDesk()


@pytest.fixture
def base_url(desk: FakeDesk) -> Iterator[str]:
    with serve(app_for(desk, PUBLIC)) as url:
        yield url


def twilio_form(phone: str, body: str) -> dict[str, str]:
    return {
        "ToCountry": "CN", "SmsMessageSid": "SM" + "1" * 32, "NumMedia": "0",
        "SmsSid": "SM" + "1" * 32, "SmsStatus": "received", "Body": body, "To": "+8610000000",
        "NumSegments": "1", "MessageSid": "SM" + "1" * 32, "AccountSid": "AC" + "0" * 32,
        "From": phone, "ApiVersion": "2010-04-01",
    }  # fmt: skip


def post(
    base_url: str, form: dict[str, str], *, sign: str | None = None, query: str = "",
    token: str = TWILIO_TOKEN, signature: str | None = None,
) -> httpx.Response:  # fmt: skip
    """POST *form* to the webhook, signed over *sign* (default: the public URL) like Twilio."""
    url = f"{PUBLIC}/twilio/sms{query}" if sign is None else sign
    headers = {}
    if signature is None:
        signature = RequestValidator(token).compute_signature(url, form)
    if signature:
        headers["X-Twilio-Signature"] = signature
    return httpx.post(f"{base_url}/twilio/sms{query}", data=form, headers=headers, timeout=10)


def message(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.text)
    assert root.tag == "Response"
    (msg,) = root.findall("Message")
    return msg.text or ""


def test_reply_1_takes_the_latest_alarm(base_url: str, desk: FakeDesk) -> None:
    text = message(post(base_url, twilio_form(W1_PHONE, "1")))
    assert text == "已接单，报警41。请尽快到场。"
    assert desk.state(41) is State.ACKNOWLEDGED
    last = desk.alarms[41].history[-1]
    assert (last.kind, last.actor, last.channel) == ("acknowledged", "w1", "sms")


def test_reply_2_closes_as_false_alarm_in_english(base_url: str, desk: FakeDesk) -> None:
    text = message(post(base_url, twilio_form(W2_PHONE, " ２ 误报 ")))
    assert text == "Alarm 42 closed as a false alarm."
    assert (desk.state(42), desk.alarms[42].outcome) == (State.RESOLVED, Outcome.FALSE_ALARM)
    assert desk.state(41) is State.NOTIFIED


def test_reply_3_asks_for_help(base_url: str, desk: FakeDesk) -> None:
    assert message(post(base_url, twilio_form(W1_PHONE, "求助"))).startswith("已为报警41求助")
    assert desk.help == [(41, "w1", "sms")]


def test_query_string_is_part_of_the_signed_url(base_url: str, desk: FakeDesk) -> None:
    message(post(base_url, twilio_form(W1_PHONE, "1"), query="?site=xiamen"))
    assert desk.state(41) is State.ACKNOWLEDGED


@pytest.mark.parametrize(
    "how", ["missing", "garbage", "wrong-token", "internal-url", "other-path", "tampered-body"]
)
def test_bad_signatures_are_refused_and_change_nothing(
    base_url: str, desk: FakeDesk, how: str
) -> None:
    form = twilio_form(W1_PHONE, "2")
    if how == "missing":
        r = post(base_url, form, signature="")
    elif how == "garbage":
        r = post(base_url, form, signature="bm90IGEgc2lnbmF0dXJl")
    elif how == "wrong-token":
        r = post(base_url, form, token="another-account-token-0000000000")
    elif how == "internal-url":  # signed over where uvicorn listens, not the public URL
        r = post(base_url, form, sign=f"{base_url}/twilio/sms")
    elif how == "other-path":
        r = post(base_url, form, sign=f"{PUBLIC}/twilio/voice")
    else:
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(
            f"{PUBLIC}/twilio/sms", twilio_form(W1_PHONE, "1")
        )
        r = post(base_url, form, signature=signature)
    assert r.status_code == 403
    assert "<Message>" not in r.text
    assert (desk.state(41), desk.alarms[41].outcome, desk.help) == (State.NOTIFIED, None, [])


def test_unregistered_number_is_told_so_in_both_languages(base_url: str, desk: FakeDesk) -> None:
    text = message(post(base_url, twilio_form("+8613999999999", "1")))
    assert "未登记" in text and "not registered" in text
    assert desk.state(41) is State.NOTIFIED


def test_unknown_reply_gets_the_menu(base_url: str, desk: FakeDesk) -> None:
    assert message(post(base_url, twilio_form(W1_PHONE, "ok <b>&"))) == "回复1接单 2误报 3求助"
    assert desk.state(41) is State.NOTIFIED


def test_no_open_alarm_after_it_is_closed(base_url: str, desk: FakeDesk) -> None:
    message(post(base_url, twilio_form(W1_PHONE, "2")))
    assert message(post(base_url, twilio_form(W1_PHONE, "1"))) == "您当前没有待处理的报警。"
    assert desk.alarms[41].outcome is Outcome.FALSE_ALARM


def test_a_repeat_changes_nothing(base_url: str, desk: FakeDesk) -> None:
    message(post(base_url, twilio_form(W1_PHONE, "1")))
    assert message(post(base_url, twilio_form(W1_PHONE, "1"))).startswith("已接单")
    assert [e.kind for e in desk.alarms[41].history].count("acknowledged") == 1


def test_refused_transition_is_explained(
    base_url: str, desk: FakeDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    message(post(base_url, twilio_form(W1_PHONE, "2")))

    async def stale(_worker: str) -> int:  # closed on the page between lookup and reply
        return 41

    monkeypatch.setattr(desk, "latest_notified", stale)
    text = message(post(base_url, twilio_form(W1_PHONE, "1")))
    assert text.startswith("报警41未变更：") and "resolved" in text
    assert desk.alarms[41].outcome is Outcome.FALSE_ALARM


FORM_TYPE = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("content", "ctype", "status"),
    [
        (b"Body=1&From=%2B8613800000001&x=" + b"y" * 20_000, FORM_TYPE, 413),
        (b'{"Body": "1"}', "application/json", 415),
        (b"&".join(b"f%d=1" % i for i in range(100)), FORM_TYPE, 400),
    ],
    ids=["huge", "json", "too-many-fields"],
)
def test_hostile_webhook_bodies(
    base_url: str, desk: FakeDesk, content: bytes, ctype: str, status: int
) -> None:
    r = httpx.post(f"{base_url}/twilio/sms", content=content, headers={"Content-Type": ctype})
    assert r.status_code == status
    assert desk.state(41) is State.NOTIFIED


def test_healthz_over_http(base_url: str) -> None:
    assert httpx.get(f"{base_url}/healthz").json() == {"status": "ok"}


FORGED_LINE = "\n2026-09-21 INFO cloud.web.sms alarm 41: sms take from worker w1"


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    for r in caplog.records:
        assert "\n" not in r.getMessage() and "\r" not in r.getMessage(), r.getMessage()
    return "\n".join(r.getMessage() for r in caplog.records)


def test_logs_mask_the_sender_and_escape_what_it_wrote(
    base_url: str, desk: FakeDesk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stranger = "+8613999999999"
    assert post(base_url, twilio_form(stranger + FORGED_LINE, "2"), signature="bm90").status_code \
        == 403  # fmt: skip
    message(post(base_url, twilio_form(stranger + FORGED_LINE, "2")))
    message(post(base_url, twilio_form(stranger, "1")))
    assert post(base_url, twilio_form(stranger, "1"), signature="bm90").status_code == 403
    message(post(base_url, twilio_form(W1_PHONE, "1")))
    logged = _logged(caplog)
    assert "+86139****9999" in logged
    assert "13999999999" not in logged and W1_PHONE not in logged
    assert "sms take from worker w1" in logged  # the real line, once
    assert logged.count("sms take from worker w1") == 1
    assert desk.state(41) is State.ACKNOWLEDGED


def test_without_a_twilio_token_there_is_no_webhook(desk: FakeDesk) -> None:
    app = create_app(desk, signer(), public_base_url=PUBLIC, clock=lambda: NOW)
    with serve(app) as url:
        # Signed with the empty key, as anyone could when the token was left unset.
        r = post(url, twilio_form(W1_PHONE, "2"), token="")
        assert r.status_code == 404
        assert httpx.get(f"{url}/healthz").status_code == 200
    assert (desk.state(41), desk.alarms[41].outcome) == (State.NOTIFIED, None)


@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_twilio_token_refuses_to_build_the_app(desk: FakeDesk, empty: str) -> None:
    with pytest.raises(ValueError, match="twilio_auth_token is empty"):
        create_app(
            desk, signer(), twilio_auth_token=empty, public_base_url=PUBLIC, clock=lambda: NOW
        )


TWILIO_ENV = {
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
    "TWILIO_FROM_NUMBER": "+8610000000",
}


def test_the_token_comes_with_the_web_settings(desk: FakeDesk) -> None:
    settings = WebSettings.from_env(TWILIO_ENV)
    assert settings.twilio_auth_token is not None
    assert WebSettings.from_env({}).twilio_auth_token is None
    app = create_app(desk, signer(), public_base_url=PUBLIC, clock=lambda: NOW, settings=settings)
    with serve(app) as url:
        message(post(url, twilio_form(W1_PHONE, "2")))
    assert desk.alarms[41].outcome is Outcome.FALSE_ALARM


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_token_in_the_environment_is_a_configuration_error(empty: str) -> None:
    with pytest.raises(ValueError, match="TWILIO_AUTH_TOKEN"):
        WebSettings.from_env({**TWILIO_ENV, "TWILIO_AUTH_TOKEN": empty})
    with pytest.raises(ValueError, match="twilio_auth_token"):
        WebSettings(twilio_auth_token=SecretStr(empty))


def test_two_different_tokens_are_refused(desk: FakeDesk) -> None:
    with pytest.raises(ValueError, match="two different"):
        create_app(
            desk, signer(), twilio_auth_token="another-token-" + "y" * 20,
            public_base_url=PUBLIC, clock=lambda: NOW, settings=WebSettings.from_env(TWILIO_ENV),
        )  # fmt: skip
