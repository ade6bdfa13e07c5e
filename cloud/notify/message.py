"""What a channel sends, to whom, and what it hands back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class ChannelKind(StrEnum):
    """The channels a message can go out on."""

    SMS = "sms"
    PUSH = "push"
    WEBHOOK = "webhook"
    CONSOLE = "console"


class Locale(StrEnum):
    """Languages the templates are written in."""

    ZH_CN = "zh-CN"
    EN = "en"


class WebhookFormat(StrEnum):
    """Body shapes the webhook channel can produce."""

    WECOM = "wecom"
    DINGTALK = "dingtalk"
    JSON = "json"


@dataclass(frozen=True)
class WebhookTarget:
    """Where a webhook goes and how it is signed (DingTalk `sign`, or our JSON signature)."""

    url: str
    format: WebhookFormat = WebhookFormat.JSON
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Recipient:
    """A person (or group robot) a message is addressed to."""

    worker_id: str
    name: str
    phone: str | None = None
    locale: Locale = Locale.ZH_CN
    push_subscription: str | None = field(default=None, repr=False)
    """The browser's PushSubscription as JSON (`{"endpoint":..,"keys":{"p256dh":..,"auth":..}}`)."""
    webhook: WebhookTarget | None = None


def message_id(alarm_id: str, step: int, worker_id: str, channel: ChannelKind) -> str:
    """The idempotency key of one notification: the same step to the same person once."""
    return f"{alarm_id}:{step}:{worker_id}:{channel}"


@dataclass(frozen=True)
class Message:
    """One rendered notification for one recipient on one channel."""

    id: str
    alarm_id: str
    recipient: Recipient
    channel: ChannelKind
    text: str
    link: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    """Proof of hand-over to the provider (not of delivery to the phone)."""

    provider_id: str
    channel: ChannelKind
    sent_at: datetime


class Channel(Protocol):
    """Anything that can send a `Message`; failures raise `ChannelError`."""

    async def send(self, msg: Message) -> Receipt:
        """Hand *msg* to the provider, or raise `ChannelError(retryable=...)`."""
        ...
