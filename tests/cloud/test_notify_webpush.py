"""WebPush through pywebpush to a push endpoint that decrypts what it receives."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from cloud.notify import (
    ChannelError,
    ChannelKind,
    ConfigError,
    Locale,
    Message,
    PushEndpointRefused,
    PushServices,
    Recipient,
    VapidSettings,
    WebPush,
    generate_vapid_keys,
)
from rigs.standins import PushEndpoint

KEYS = generate_vapid_keys()


@pytest.fixture
def endpoint() -> Iterator[PushEndpoint]:
    with PushEndpoint() as ep:
        yield ep


# The stand-in is reached as http://localhost:<port>: allowed here, and only here, by config.
STANDIN_ALLOWED = PushServices(extra_hosts=("http://localhost",))
ENV = {
    "GRIDALARM_VAPID_PRIVATE_KEY": KEYS.private_key,
    "GRIDALARM_VAPID_SUBJECT": "mailto:ops@example.org",
    "GRIDALARM_PUSH_HOSTS": "http://localhost",
}


@pytest.fixture
async def push() -> AsyncIterator[WebPush]:
    settings = VapidSettings.from_env(ENV)
    assert settings is not None
    async with WebPush(settings) as channel:
        yield channel


def _msg(subscription: str | None, locale: Locale = Locale.ZH_CN) -> Message:
    link = "https://g.cn/m/AbC"
    who = Recipient(worker_id="w17", name="林秀英", locale=locale, push_subscription=subscription)
    return Message(
        id="4821:1:w17:push",
        alarm_id="4821",
        recipient=who,
        channel=ChannelKind.PUSH,
        text=f"【街道大脑】疑似火警 包饼店 回复1接单 2误报 {link}",
        link=link,
        data={"severity": "critical"},
    )


async def test_payload_arrives_encrypted_and_decrypts_to_the_message(
    push: WebPush, endpoint: PushEndpoint
) -> None:
    sub = endpoint.subscription("w17")
    receipt = await push.send(_msg(json.dumps(sub)))

    (got,) = endpoint.received
    assert got.json() == {
        "title": "街道大脑",
        "body": "【街道大脑】疑似火警 包饼店 回复1接单 2误报",
        "url": "https://g.cn/m/AbC",
        "alarm_id": "4821",
        "id": "4821:1:w17:push",
        "data": {"severity": "critical"},
    }
    (raw,) = endpoint.requests
    assert "疑似火警".encode() not in raw.body  # encrypted on the wire
    assert got.vapid_public_key == KEYS.public_key
    assert got.vapid_claims["sub"] == "mailto:ops@example.org"
    assert got.ttl == "3600"
    assert receipt.channel is ChannelKind.PUSH


async def test_send_without_context_manager_uses_a_session_per_push(
    endpoint: PushEndpoint,
) -> None:
    settings = VapidSettings(
        private_key=KEYS.private_key, subject="mailto:a@b.c", push_services=STANDIN_ALLOWED
    )
    channel = WebPush(settings)
    await channel.send(_msg(json.dumps(endpoint.subscription())))
    assert len(endpoint.received) == 1


@pytest.mark.parametrize("status", [404, 410])
async def test_gone_subscription_is_permanent(
    push: WebPush, endpoint: PushEndpoint, status: int
) -> None:
    endpoint.fail_next(1, status=status)
    with pytest.raises(ChannelError) as info:
        await push.send(_msg(json.dumps(endpoint.subscription())))
    assert not info.value.retryable
    assert info.value.status == status


async def test_unsubscribed_endpoint_answers_410(push: WebPush, endpoint: PushEndpoint) -> None:
    endpoint.unsubscribe("w17")
    with pytest.raises(ChannelError, match="gone") as info:
        await push.send(_msg(json.dumps(endpoint.subscription("w17"))))
    assert not info.value.retryable


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_trouble_is_retryable(
    push: WebPush, endpoint: PushEndpoint, status: int
) -> None:
    endpoint.fail_next(1, status=status)
    msg = _msg(json.dumps(endpoint.subscription()))
    with pytest.raises(ChannelError) as info:
        await push.send(msg)
    assert info.value.retryable
    await push.send(msg)
    assert len(endpoint.received) == 1


async def test_unreachable_service_is_retryable(push: WebPush) -> None:
    with PushEndpoint() as gone:
        sub = gone.subscription()
    with pytest.raises(ChannelError) as info:
        await push.send(_msg(json.dumps(sub)))
    assert info.value.retryable


@pytest.mark.parametrize(
    "subscription",
    [
        None,
        "not json",
        '{"endpoint": "http://127.0.0.1:9/p"}',
        '{"endpoint": "http://127.0.0.1:9/p", "keys": {"p256dh": "AAAA", "auth": "AAAA"}}',
    ],
)
async def test_unusable_subscription_is_permanent(push: WebPush, subscription: str | None) -> None:
    with pytest.raises(ChannelError) as info:
        await push.send(_msg(subscription))
    assert not info.value.retryable


def test_generated_keys_are_raw_p256() -> None:
    import base64

    keys = generate_vapid_keys()
    assert len(base64.urlsafe_b64decode(keys.private_key + "=")) == 32
    assert base64.urlsafe_b64decode(keys.public_key + "=")[0] == 0x04
    assert keys.private_key not in repr(keys)


def test_bad_private_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        WebPush(VapidSettings(private_key="bm90LWEta2V5", subject="mailto:a@b.c"))


def test_subject_must_be_mailto_or_https() -> None:
    with pytest.raises(ConfigError):
        VapidSettings.from_env({"GRIDALARM_VAPID_PRIVATE_KEY": KEYS.private_key})


async def test_a_service_not_on_the_list_is_never_contacted(endpoint: PushEndpoint) -> None:
    settings = VapidSettings.from_env({**ENV, "GRIDALARM_PUSH_HOSTS": ""})
    assert settings is not None
    async with WebPush(settings) as channel:
        with pytest.raises(ChannelError, match="not a known push service") as info:
            await channel.send(_msg(json.dumps(endpoint.subscription())))
    assert not info.value.retryable
    assert endpoint.requests == []


@pytest.mark.parametrize(
    "where",
    [
        "http://127.0.0.1:{port}/push/w17",  # the stand-in itself, by address
        "https://127.0.0.1:{port}/push/w17",
        "https://[::1]:{port}/push/w17",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.7/push",
        "https://192.168.1.1/push",
        "https://localhost.evil.example/push",
        "https://fcm.googleapis.com.evil.example/push",
        "ftp://fcm.googleapis.com/push",
        "https://user:pw@fcm.googleapis.com/push",
    ],
)
async def test_internal_or_unknown_endpoints_are_refused_when_sending(
    push: WebPush, endpoint: PushEndpoint, where: str
) -> None:
    port = endpoint.url.rsplit(":", 1)[1]
    sub = {**endpoint.subscription(), "endpoint": where.format(port=port)}
    with pytest.raises(ChannelError, match="push endpoint refused") as info:
        await push.send(_msg(json.dumps(sub)))
    assert not info.value.retryable
    assert endpoint.requests == []


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc:APA91b", True),
        ("https://android.googleapis.com/gcm/send/abc", True),
        ("https://updates.push.services.mozilla.com/wpush/v2/gAAAA", True),
        ("https://web.push.apple.com/QGa", True),
        ("https://wns2-par02p.notify.windows.com/w/?token=BQYAAA", True),
        ("https://FCM.googleapis.com/fcm/send/abc", True),
        ("http://fcm.googleapis.com/fcm/send/abc", False),  # plain http only where configured
        ("https://push.example.net/abc", False),
        ("https://evilfcm.googleapis.com/abc", False),
        ("https://8.8.8.8/abc", False),  # a public address, but not a push service
        ("https://[fe80::1]/abc", False),
        ("https://0.0.0.0/abc", False),
        ("https://fcm.googleapis.com\n.evil/abc", False),
        ("", False),
    ],
)
def test_default_push_services(url: str, allowed: bool) -> None:
    services = PushServices()
    if allowed:
        services.check(url)
    else:
        with pytest.raises(PushEndpointRefused):
            services.check(url)


def test_a_closed_network_adds_its_own_push_service() -> None:
    services = PushServices.from_env({"GRIDALARM_PUSH_HOSTS": "push.intra.example, Push2.Intra"})
    services.check("https://push.intra.example/p/1")
    services.check("https://a.push2.intra/p/1")
    services.check("https://fcm.googleapis.com/fcm/send/x")  # the defaults stay
    with pytest.raises(PushEndpointRefused):
        services.check("http://push.intra.example/p/1")


@pytest.mark.parametrize(
    "entry",
    [
        "10.0.0.5",
        "http://127.0.0.1",
        "[::1]",
        "push.intra/x",
        "https://a.example",
        "a.example,,b.example",
    ],
)
def test_the_list_refuses_addresses_and_anything_but_a_host_name(entry: str) -> None:
    with pytest.raises(ConfigError, match="GRIDALARM_PUSH_HOSTS"):
        PushServices.from_env({"GRIDALARM_PUSH_HOSTS": entry})
