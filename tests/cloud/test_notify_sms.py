"""TwilioSms against the Twilio stand-in, driven by the real twilio client."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest

from cloud.notify import (
    ChannelError,
    ChannelKind,
    ConfigError,
    Message,
    Recipient,
    TwilioSettings,
    TwilioSms,
    message_id,
)
from rigs.standins import TwilioStandin

SID = "AC" + "1" * 32
TOKEN = "secret-auth-token-0123456789abcd"
FROM = "+15005550006"


@pytest.fixture
def twilio() -> Iterator[TwilioStandin]:
    with TwilioStandin(SID, TOKEN) as standin:
        yield standin


@pytest.fixture
def sms(twilio: TwilioStandin, monkeypatch: pytest.MonkeyPatch) -> Iterator[TwilioSms]:
    for name in ("TWILIO_REGION", "TWILIO_EDGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_FROM_NUMBER", FROM)
    monkeypatch.setenv("GRIDALARM_TWILIO_API_URL", twilio.url)
    settings = TwilioSettings.from_env(os.environ)
    assert settings is not None
    channel = TwilioSms(settings.model_copy(update={"timeout_s": 1.0}))
    yield channel
    channel.close()


def _msg(step: int = 1, phone: str | None = "+8613800000001") -> Message:
    who = Recipient(worker_id="w17", name="林秀英", phone=phone)
    return Message(
        id=message_id("4821", step, who.worker_id, ChannelKind.SMS),
        alarm_id="4821",
        recipient=who,
        channel=ChannelKind.SMS,
        text="【街道大脑】疑似火警 叶厝社区 包饼店 烟感 smk-0042 06:00 回复1接单 2误报 https://g.cn/m/x",
        link="https://g.cn/m/x",
    )


async def test_send_posts_form_with_basic_auth_to_messages_resource(
    sms: TwilioSms, twilio: TwilioStandin
) -> None:
    msg = _msg()
    receipt = await sms.send(msg)

    (req,) = twilio.requests
    assert req.method == "POST"
    assert req.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    basic = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert req.headers["authorization"] == f"Basic {basic}"
    assert req.headers["i-twilio-idempotency-token"] == msg.id
    assert req.form() == {"To": ["+8613800000001"], "From": [FROM], "Body": [msg.text]}
    assert receipt.provider_id == twilio.messages[0]["sid"]
    assert receipt.channel is ChannelKind.SMS


async def test_server_error_is_retryable_and_retry_delivers_once(
    sms: TwilioSms, twilio: TwilioStandin
) -> None:
    twilio.fail_next(2, status=500)
    msg = _msg()
    for _ in range(2):
        with pytest.raises(ChannelError) as info:
            await sms.send(msg)
        assert info.value.retryable
        assert info.value.status == 500
    await sms.send(msg)
    assert len(twilio.requests) == 3
    assert len(twilio.messages) == 1


async def test_lost_response_then_retry_is_not_delivered_twice(
    sms: TwilioSms, twilio: TwilioStandin
) -> None:
    twilio.drop_next(1)
    msg = _msg()
    with pytest.raises(ChannelError) as info:
        await sms.send(msg)
    assert info.value.retryable
    receipt = await sms.send(msg)

    assert len(twilio.requests) == 2
    assert len(twilio.messages) == 1
    assert receipt.provider_id == twilio.messages[0]["sid"]


async def test_timeout_is_retryable(sms: TwilioSms, twilio: TwilioStandin) -> None:
    twilio.delay_next(1, delay_s=3.0)
    with pytest.raises(ChannelError) as info:
        await sms.send(_msg())
    assert info.value.retryable


async def test_a_different_step_is_a_different_message(
    sms: TwilioSms, twilio: TwilioStandin
) -> None:
    await sms.send(_msg(step=1))
    await sms.send(_msg(step=2))
    assert len(twilio.messages) == 2


async def test_client_error_is_permanent(sms: TwilioSms, twilio: TwilioStandin) -> None:
    twilio.fail_next(1, status=400)
    with pytest.raises(ChannelError) as info:
        await sms.send(_msg())
    assert not info.value.retryable
    assert info.value.status == 400


async def test_rate_limit_is_retryable(sms: TwilioSms, twilio: TwilioStandin) -> None:
    twilio.fail_next(1, status=429)
    with pytest.raises(ChannelError) as info:
        await sms.send(_msg())
    assert info.value.retryable


async def test_wrong_credentials_are_permanent(twilio: TwilioStandin) -> None:
    settings = TwilioSettings.from_env(
        {
            "TWILIO_ACCOUNT_SID": SID,
            "TWILIO_AUTH_TOKEN": "wrong",
            "TWILIO_FROM_NUMBER": FROM,
            "GRIDALARM_TWILIO_API_URL": twilio.url,
        }
    )
    assert settings is not None
    channel = TwilioSms(settings)
    try:
        with pytest.raises(ChannelError) as info:
            await channel.send(_msg())
    finally:
        channel.close()
    assert not info.value.retryable
    assert info.value.status == 401
    assert twilio.messages == []


async def test_recipient_without_phone_is_permanent(sms: TwilioSms) -> None:
    with pytest.raises(ChannelError) as info:
        await sms.send(_msg(phone=None))
    assert not info.value.retryable


async def test_nothing_listening_is_retryable() -> None:
    with TwilioStandin(SID, TOKEN) as gone:
        url = gone.url
    settings = TwilioSettings(
        account_sid=SID, auth_token=TOKEN, from_number=FROM, api_url=url, timeout_s=1.0
    )
    channel = TwilioSms(settings)
    try:
        with pytest.raises(ChannelError) as info:
            await channel.send(_msg())
    finally:
        channel.close()
    assert info.value.retryable


async def test_api_url_with_path_prefix_is_kept(twilio: TwilioStandin) -> None:
    settings = TwilioSettings(
        account_sid=SID, auth_token=TOKEN, from_number=FROM, api_url=twilio.url + "/gw/"
    )
    channel = TwilioSms(settings)
    try:
        with pytest.raises(ChannelError):  # the stand-in only knows the bare path
            await channel.send(_msg())
    finally:
        channel.close()
    assert twilio.requests[0].path == f"/gw/2010-04-01/Accounts/{SID}/Messages.json"


def test_settings_absent_means_no_sms() -> None:
    assert TwilioSettings.from_env({"GRIDALARM_TWILIO_API_URL": "http://x"}) is None


def test_settings_half_configured_names_what_is_missing() -> None:
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER"):
        TwilioSettings.from_env({"TWILIO_ACCOUNT_SID": SID})


def test_settings_repr_hides_the_token() -> None:
    settings = TwilioSettings(account_sid=SID, auth_token=TOKEN, from_number=FROM)
    assert TOKEN not in repr(settings)


async def test_rendered_alarm_with_signed_link_reaches_the_stand_in(
    sms: TwilioSms, twilio: TwilioStandin
) -> None:
    from datetime import UTC, datetime, timedelta

    from cloud.notify import AlarmFacts, LinkSigner, Locale, link, render_alarm

    signer = LinkSigner("0123456789abcdef-link-secret")
    now = datetime(2025, 3, 14, 6, 0, tzinfo=UTC)
    url = link("https://g.cn", signer.make("17", "4821", now + timedelta(hours=12)))
    facts = AlarmFacts("fire", "smk-0042", "smoke", "叶厝社区", "包饼店", now)
    msg = Message(
        id=message_id("4821", 1, "17", ChannelKind.SMS),
        alarm_id="4821",
        recipient=Recipient(worker_id="17", name="林秀英", phone="+8613800000001"),
        channel=ChannelKind.SMS,
        text=render_alarm(facts, Locale.ZH_CN, url),
        link=url,
    )
    await sms.send(msg)

    body = twilio.messages[0]["body"]
    assert body == msg.text
    token = body.rsplit("/m/", 1)[1]
    assert signer.verify(token, now) == ("17", "4821")
