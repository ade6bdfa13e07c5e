"""Webhook channel: WeCom / DingTalk robot formats and signed plain JSON, at a real receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from cloud.notify import (
    ChannelError,
    ChannelKind,
    Locale,
    Message,
    Recipient,
    Webhook,
    WebhookFormat,
    WebhookTarget,
    sign_json_body,
    verify_json_signature,
)
from rigs.standins import WebhookReceiver

NOW = datetime(2025, 3, 14, 6, 0, 5, tzinfo=UTC)
LINK = "https://g.cn/m/AbC"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
async def hook() -> AsyncIterator[Webhook]:
    async with Webhook(timeout_s=1.0, clock=lambda: NOW) as channel:
        yield channel


def _msg(target: WebhookTarget | None, locale: Locale = Locale.ZH_CN) -> Message:
    who = Recipient(worker_id="grid-robot-3", name="叶厝社区群", locale=locale, webhook=target)
    return Message(
        id="4821:1:grid-robot-3:webhook",
        alarm_id="4821",
        recipient=who,
        channel=ChannelKind.WEBHOOK,
        text=f"【街道大脑】疑似火警 叶厝社区 包饼店 回复1接单 2误报 {LINK}",
        link=LINK,
        data={"device_id": "smk-0042"},
    )


async def test_wecom_markdown(hook: Webhook, receiver: WebhookReceiver) -> None:
    target = WebhookTarget(f"{receiver.url}/cgi-bin/webhook/send?key=K1", WebhookFormat.WECOM)
    receipt = await hook.send(_msg(target))

    (req,) = receiver.requests
    assert req.path == "/cgi-bin/webhook/send"
    assert req.query == {"key": ["K1"]}
    assert req.json() == {
        "msgtype": "markdown",
        "markdown": {
            "content": "**街道大脑**\n【街道大脑】疑似火警 叶厝社区 包饼店 回复1接单 2误报\n"
            f"[查看并处置]({LINK})"
        },
    }
    assert receipt.channel is ChannelKind.WEBHOOK


async def test_dingtalk_markdown_signed_as_dingtalk_specifies(
    hook: Webhook, receiver: WebhookReceiver
) -> None:
    secret = "SEC0123456789abcdef"
    target = WebhookTarget(
        f"{receiver.url}/robot/send?access_token=T1", WebhookFormat.DINGTALK, secret
    )
    await hook.send(_msg(target, Locale.EN))

    (req,) = receiver.requests
    timestamp = req.query["timestamp"][0]
    assert timestamp == str(int(NOW.timestamp() * 1000))
    # The receiving side's recipe from DingTalk's documentation.
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    assert req.query["sign"] == [base64.b64encode(mac.digest()).decode()]
    assert req.query["access_token"] == ["T1"]
    body = req.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "Street Brain"
    assert body["markdown"]["text"].endswith(f"[Open]({LINK})")


async def test_dingtalk_without_secret_has_no_sign(
    hook: Webhook, receiver: WebhookReceiver
) -> None:
    await hook.send(_msg(WebhookTarget(f"{receiver.url}/robot/send", WebhookFormat.DINGTALK)))
    assert receiver.requests[0].query == {}


async def test_plain_json_is_signed_over_timestamp_and_raw_body(
    hook: Webhook, receiver: WebhookReceiver
) -> None:
    secret = "hook-secret"
    await hook.send(_msg(WebhookTarget(f"{receiver.url}/in", WebhookFormat.JSON, secret)))

    (req,) = receiver.requests
    header = req.headers["x-gridalarm-signature"]
    t = int(NOW.timestamp())
    expected = hmac.new(secret.encode(), f"{t}.".encode() + req.body, hashlib.sha256)
    assert header == f"t={t},v1={expected.hexdigest()}"
    assert verify_json_signature(header, req.body, secret, now=t + 10)
    assert req.headers["x-gridalarm-message-id"] == "4821:1:grid-robot-3:webhook"
    assert req.json() == {
        "id": "4821:1:grid-robot-3:webhook",
        "alarm_id": "4821",
        "worker_id": "grid-robot-3",
        "text": _msg(None).text,
        "link": LINK,
        "data": {"device_id": "smk-0042"},
        "sent_at": NOW.isoformat(),
    }


def test_json_signature_refuses_tampering_other_secrets_and_old_timestamps() -> None:
    body = json.dumps({"a": 1}).encode()
    header = sign_json_body("s", body, 1_000)
    assert verify_json_signature(header, body, "s", now=1_000)
    assert not verify_json_signature(header, body + b" ", "s", now=1_000)
    assert not verify_json_signature(header, body, "other", now=1_000)
    assert not verify_json_signature(header, body, "s", now=1_000 + 301)
    assert not verify_json_signature(header.replace("t=1000", "t=1001"), body, "s", now=1_000)
    assert not verify_json_signature("garbage", body, "s", now=1_000)


async def test_plain_json_without_secret_is_unsigned(
    hook: Webhook, receiver: WebhookReceiver
) -> None:
    await hook.send(_msg(WebhookTarget(f"{receiver.url}/in")))
    assert "x-gridalarm-signature" not in receiver.requests[0].headers


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (502, True), (429, True), (400, False), (404, False)]
)
async def test_http_status_classification(
    hook: Webhook, receiver: WebhookReceiver, status: int, retryable: bool
) -> None:
    receiver.reply_next(1, status=status, body={})
    with pytest.raises(ChannelError) as info:
        await hook.send(_msg(WebhookTarget(f"{receiver.url}/in")))
    assert info.value.retryable is retryable
    assert info.value.status == status


@pytest.mark.parametrize(
    ("fmt", "errcode", "retryable"),
    [
        (WebhookFormat.WECOM, 45009, True),  # api freq out of limit
        (WebhookFormat.WECOM, 93000, False),  # invalid webhook url
        (WebhookFormat.DINGTALK, 130101, True),  # send too fast
        (WebhookFormat.DINGTALK, 310000, False),  # keywords / sign / ip not allowed
    ],
)
async def test_robot_errcode_in_a_200_is_a_failure(
    hook: Webhook, receiver: WebhookReceiver, fmt: WebhookFormat, errcode: int, retryable: bool
) -> None:
    receiver.reply_next(1, body={"errcode": errcode, "errmsg": "nope"})
    with pytest.raises(ChannelError, match=str(errcode)) as info:
        await hook.send(_msg(WebhookTarget(f"{receiver.url}/robot", fmt)))
    assert info.value.retryable is retryable


async def test_dropped_connection_is_retryable(hook: Webhook, receiver: WebhookReceiver) -> None:
    receiver.drop_next(1)
    with pytest.raises(ChannelError) as info:
        await hook.send(_msg(WebhookTarget(f"{receiver.url}/in")))
    assert info.value.retryable


async def test_bad_url_and_missing_target_are_permanent(hook: Webhook) -> None:
    for target in (WebhookTarget("ftp://example.org/x"), None):
        with pytest.raises(ChannelError) as info:
            await hook.send(_msg(target))
        assert not info.value.retryable


async def test_send_without_context_manager(receiver: WebhookReceiver) -> None:
    await Webhook().send(_msg(WebhookTarget(f"{receiver.url}/in")))
    assert len(receiver.requests) == 1
