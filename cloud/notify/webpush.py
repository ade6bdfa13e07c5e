"""Web Push (RFC 8030/8291/8292) to the worker's page installed as a PWA, through pywebpush."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pywebpush import WebPushException, webpush_async

from cloud.notify.errors import ChannelError, ConfigError, PushEndpointRefused
from cloud.notify.message import ChannelKind, Message, Receipt
from cloud.notify.pushservices import PushServices
from cloud.notify.templates import title_and_body

logger = logging.getLogger(__name__)

_GONE = (404, 410)


@dataclass(frozen=True)
class VapidKeys:
    """A VAPID key pair as the browser and the server want them (URL-safe base64)."""

    private_key: str = field(repr=False)
    """Raw 32-byte P-256 scalar: GRIDALARM_VAPID_PRIVATE_KEY."""
    public_key: str
    """Uncompressed point: the page's `applicationServerKey` for `pushManager.subscribe`."""


def generate_vapid_keys() -> VapidKeys:
    """A fresh VAPID key pair, e.g. for the demo."""
    key = ec.generate_private_key(ec.SECP256R1())
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return VapidKeys(private_key=_b64(scalar), public_key=_b64(point))


class VapidSettings(BaseModel):
    """Who we are to push services."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    private_key: SecretStr = Field(description="GRIDALARM_VAPID_PRIVATE_KEY, raw base64url")
    subject: str = Field(
        pattern=r"^(mailto:|https://)",
        description="GRIDALARM_VAPID_SUBJECT: mailto: or https: contact for push services",
    )
    ttl_s: int = Field(
        default=3600, ge=0, description="how long a push service keeps an undelivered push"
    )
    timeout_s: float = Field(default=10.0, gt=0, description="HTTP timeout per push")
    push_services: PushServices = Field(
        default_factory=PushServices,
        description="the push services a subscription may point at (GRIDALARM_PUSH_HOSTS)",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VapidSettings | None:
        """Settings from GRIDALARM_VAPID_* and GRIDALARM_PUSH_HOSTS; None when the private
        key is not set."""
        if not env.get("GRIDALARM_VAPID_PRIVATE_KEY"):
            return None
        try:
            return cls(
                private_key=SecretStr(env["GRIDALARM_VAPID_PRIVATE_KEY"]),
                subject=env.get("GRIDALARM_VAPID_SUBJECT", ""),
                push_services=PushServices.from_env(env),
            )
        except ValidationError as err:
            raise ConfigError(f"VAPID settings from the environment: {err}") from err


class WebPush:
    """The push channel; use as `async with` to share one HTTP session across sends."""

    def __init__(
        self, settings: VapidSettings, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._settings = settings
        raw = settings.private_key.get_secret_value()
        try:
            if len(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))) != 32:
                raise ValueError("expected 32 raw bytes, URL-safe base64")
            self._vapid = Vapid.from_raw(raw.encode())
        except (ValueError, binascii.Error) as err:
            raise ConfigError(f"GRIDALARM_VAPID_PRIVATE_KEY is not a P-256 key: {err}") from err
        self._session: aiohttp.ClientSession | None = None
        self._clock = clock or (lambda: datetime.now(UTC))

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, msg: Message) -> Receipt:
        """Encrypt a JSON payload (title, body, url, alarm_id) to the recipient's subscription."""
        subscription = _subscription(msg)
        try:
            self._settings.push_services.check(subscription["endpoint"])
        except PushEndpointRefused as err:  # stored before the list, or edited in the database
            raise ChannelError(f"{msg.id}: {err}", retryable=False) from err
        try:
            response = await webpush_async(
                subscription,
                json.dumps(push_payload(msg), ensure_ascii=False),
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self._settings.subject},
                ttl=self._settings.ttl_s,
                timeout=self._settings.timeout_s,
                headers={"Urgency": "high"},
                aiohttp_session=self._session,
            )
        except WebPushException as err:
            raise _push_error(msg.id, err) from err
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ChannelError(
                f"{msg.id}: push service unreachable: {err!r}", retryable=True
            ) from err
        except (ValueError, TypeError, KeyError) as err:  # keys that do not decode or encrypt
            raise ChannelError(
                f"{msg.id}: unusable push subscription: {err!r}", retryable=False
            ) from err
        location = response.headers.get("Location", "") if hasattr(response, "headers") else ""
        logger.info(
            "push %s alarm %s to worker %s: %s",
            msg.id,
            msg.alarm_id,
            msg.recipient.worker_id,
            response.status,
        )
        return Receipt(
            provider_id=location or msg.id, channel=ChannelKind.PUSH, sent_at=self._clock()
        )


def push_payload(msg: Message) -> dict[str, Any]:
    """What the service worker receives: title, body (text without the link), url, alarm_id."""
    title, body = title_and_body(msg)
    return {
        "title": title,
        "body": body,
        "url": msg.link,
        "alarm_id": msg.alarm_id,
        "id": msg.id,
        "data": dict(msg.data),
    }


def _subscription(msg: Message) -> dict[str, Any]:
    raw = msg.recipient.push_subscription
    if not raw:
        raise ChannelError(f"{msg.id}: recipient has no push subscription", retryable=False)
    try:
        sub = json.loads(raw)
        keys = sub["keys"]
        return {
            "endpoint": str(sub["endpoint"]),
            "keys": {"p256dh": str(keys["p256dh"]), "auth": str(keys["auth"])},
        }
    except (ValueError, KeyError, TypeError) as err:
        raise ChannelError(
            f"{msg.id}: malformed push subscription: {err!r}", retryable=False
        ) from err


def _push_error(msg_id: str, err: WebPushException) -> ChannelError:
    status = err.status_code
    if status in _GONE:
        return ChannelError(
            f"{msg_id}: push subscription gone ({status})", retryable=False, status=status
        )
    # No status: pywebpush refused before sending (keys that do not encode); retrying won't help.
    retryable = status is not None and (status >= 500 or status == 429)
    return ChannelError(
        f"{msg_id}: push service answered {status}: {err.message}",
        retryable=retryable,
        status=status,
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
