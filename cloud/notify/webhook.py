"""Webhooks: WeCom and DingTalk group robots, and plain JSON signed with HMAC-SHA256.

Plain JSON signature, for whoever receives our hooks::

    X-Gridalarm-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}." + raw body)>

Verify over the raw request bytes (before any JSON parsing), compare in constant time, and
refuse a `t` more than a few minutes from your clock (`verify_json_signature` does all three).
`X-Gridalarm-Message-Id` repeats on a retry of the same message: use it to drop duplicates.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import httpx

from cloud.notify.errors import ChannelError
from cloud.notify.message import ChannelKind, Message, Receipt, WebhookFormat, WebhookTarget
from cloud.notify.templates import title_and_body

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Gridalarm-Signature"
MESSAGE_ID_HEADER = "X-Gridalarm-Message-Id"
# Robot error codes that waiting cures: -1 system busy, WeCom 45009 and DingTalk 130101 rate limit.
_ROBOT_RETRYABLE = frozenset({-1, 45009, 130101})
_OPEN_LABEL = {"zh-CN": "查看并处置", "en": "Open"}


def sign_json_body(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-Gridalarm-Signature` value for *body* sent at *timestamp* (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_json_signature(
    header: str, body: bytes, secret: str, now: float, tolerance_s: float = 300
) -> bool:
    """Whether *header* signs *body* with *secret* and its time is within *tolerance_s*."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (ValueError, KeyError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign_json_body(secret, body, timestamp).rpartition("v1=")[2]
    return hmac.compare_digest(expected, given)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk robot `sign`: base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}"))."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


class Webhook:
    """The webhook channel; use as `async with` to share one connection pool."""

    def __init__(
        self, timeout_s: float = 10.0, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._timeout = httpx.Timeout(timeout_s)
        self._client: httpx.AsyncClient | None = None
        self._clock = clock or (lambda: datetime.now(UTC))

    async def __aenter__(self) -> Self:
        self._client = httpx.AsyncClient(timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, msg: Message) -> Receipt:
        """POST *msg* in its target's format; robot `errcode`s count as failures."""
        target = msg.recipient.webhook
        if target is None:
            raise ChannelError(f"{msg.id}: recipient has no webhook target", retryable=False)
        now = self._clock()
        body, params, headers = _request(msg, target, now)
        response = await self._post(msg.id, target.url, body, params, headers)
        _check(msg.id, target, response)
        logger.info(
            "webhook %s alarm %s to %s: %s",
            msg.id,
            msg.alarm_id,
            target.format,
            response.status_code,
        )
        return Receipt(provider_id=msg.id, channel=ChannelKind.WEBHOOK, sent_at=now)

    async def _post(
        self,
        msg_id: str,
        url: str,
        body: bytes,
        params: dict[str, str],
        headers: dict[str, str],
    ) -> httpx.Response:
        try:
            # Merge, never pass params=: httpx would drop the robot's key=/access_token= query.
            full = httpx.URL(url).copy_merge_params(params)
            if self._client is not None:
                return await self._client.post(full, content=body, headers=headers)
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                return await client.post(full, content=body, headers=headers)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
            raise ChannelError(f"{msg_id}: bad webhook URL: {err}", retryable=False) from err
        except httpx.TransportError as err:
            raise ChannelError(f"{msg_id}: webhook unreachable: {err!r}", retryable=True) from err


def _request(
    msg: Message, target: WebhookTarget, now: datetime
) -> tuple[bytes, dict[str, str], dict[str, str]]:
    headers = {"Content-Type": "application/json; charset=utf-8", MESSAGE_ID_HEADER: msg.id}
    params: dict[str, str] = {}
    doc = _document(msg, target.format, now)
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    if target.secret and target.format is WebhookFormat.DINGTALK:
        timestamp_ms = int(now.timestamp() * 1000)
        params = {
            "timestamp": str(timestamp_ms),
            "sign": dingtalk_sign(target.secret, timestamp_ms),
        }
    elif target.secret and target.format is WebhookFormat.JSON:
        headers[SIGNATURE_HEADER] = sign_json_body(target.secret, body, int(now.timestamp()))
    return body, params, headers


def _document(msg: Message, fmt: WebhookFormat, now: datetime) -> dict[str, Any]:
    title, text = title_and_body(msg)
    more = f"[{_OPEN_LABEL.get(msg.recipient.locale, 'Open')}]({msg.link})" if msg.link else ""
    if fmt is WebhookFormat.WECOM:
        return {
            "msgtype": "markdown",
            "markdown": {"content": f"**{title}**\n{text}\n{more}".rstrip()},
        }
    if fmt is WebhookFormat.DINGTALK:
        return {
            "msgtype": "markdown",
            "markdown": {"title": title, "text": f"#### {title}\n\n{text}\n\n{more}".rstrip()},
        }
    return {
        "id": msg.id,
        "alarm_id": msg.alarm_id,
        "worker_id": msg.recipient.worker_id,
        "text": msg.text,
        "link": msg.link,
        "data": dict(msg.data),
        "sent_at": now.isoformat(),
    }


def _check(msg_id: str, target: WebhookTarget, response: httpx.Response) -> None:
    status = response.status_code
    if status >= 300:
        raise ChannelError(
            f"{msg_id}: webhook answered {status}",
            retryable=status >= 500 or status == 429,
            status=status,
        )
    if target.format is WebhookFormat.JSON:
        return
    try:
        answer = response.json()
        code = int(answer.get("errcode", 0))
    except (ValueError, AttributeError) as err:
        raise ChannelError(
            f"{msg_id}: robot answer is not JSON: {response.text[:200]!r}",
            retryable=False,
            status=status,
        ) from err
    if code != 0:
        raise ChannelError(
            f"{msg_id}: {target.format} robot errcode {code}: {answer.get('errmsg', '')}",
            retryable=code in _ROBOT_RETRYABLE,
            status=status,
        )
