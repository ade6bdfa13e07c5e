"""SMS through the official twilio client, optionally at a Twilio-compatible base URL."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from cloud.notify.errors import ChannelError, ConfigError
from cloud.notify.message import ChannelKind, Message, Receipt

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
_ENV = {
    "account_sid": "TWILIO_ACCOUNT_SID",
    "auth_token": "TWILIO_AUTH_TOKEN",
    "from_number": "TWILIO_FROM_NUMBER",
    "api_url": "GRIDALARM_TWILIO_API_URL",
}
# Set around one create() call in the worker thread; read by the HTTP client below, because
# MessageList.create() has no way to pass extra headers.
_idempotency_token: ContextVar[str | None] = ContextVar("twilio_idempotency", default=None)


class TwilioSettings(BaseModel):
    """Twilio credentials and where its API is reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_sid: str = Field(min_length=1, description="TWILIO_ACCOUNT_SID")
    auth_token: SecretStr = Field(description="TWILIO_AUTH_TOKEN")
    from_number: str = Field(min_length=1, description="TWILIO_FROM_NUMBER, E.164")
    api_url: str | None = Field(
        default=None,
        description="GRIDALARM_TWILIO_API_URL: a Twilio-compatible base URL every request "
        "goes to (a local stand-in, or an SMS gateway that mimics Twilio's API)",
    )
    timeout_s: float = Field(default=10.0, gt=0, description="HTTP timeout per request")

    @field_validator("auth_token")
    @classmethod
    def _not_blank(cls, token: SecretStr) -> SecretStr:
        # An empty key signs anything: every forged webhook request would verify.
        if not token.get_secret_value().strip():
            raise ValueError("TWILIO_AUTH_TOKEN is empty")
        return token

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TwilioSettings | None:
        """Settings from the environment; None when no TWILIO_* variable is set at all."""
        values = {k: env[v] for k, v in _ENV.items() if env.get(v)}
        if not values.keys() - {"api_url"}:
            return None
        missing = [v for k, v in _ENV.items() if k != "api_url" and k not in values]
        if missing:
            raise ConfigError(f"Twilio half-configured: set {', '.join(missing)}")
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            raise ConfigError(f"Twilio settings from the environment: {err}") from err


class GatewayHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no py.typed
    """The one place requests are redirected to `api_url` and idempotency tokens are added."""

    def __init__(self, api_url: str | None, timeout_s: float) -> None:
        super().__init__(timeout=timeout_s)
        self._base = urlsplit(api_url) if api_url else None

    def request(  # noqa: PLR0917 - the signature is TwilioHttpClient.request's
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Rewrite scheme, host and path prefix; add the idempotency header when one is set."""
        if self._base is not None:
            u = urlsplit(url)
            path = self._base.path.rstrip("/") + u.path
            url = urlunsplit((self._base.scheme, self._base.netloc, path, u.query, ""))
        token = _idempotency_token.get()
        if token is not None:
            headers = {**(headers or {}), IDEMPOTENCY_HEADER: token}
        return super().request(method, url, params, data, headers, auth, timeout, allow_redirects)


class TwilioSms:
    """The SMS channel; the blocking client runs in a worker thread."""

    def __init__(
        self, settings: TwilioSettings, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._settings = settings
        self._http = GatewayHttpClient(settings.api_url, settings.timeout_s)
        self._client = Client(
            settings.account_sid,
            settings.auth_token.get_secret_value(),
            http_client=self._http,
        )
        self._clock = clock or (lambda: datetime.now(UTC))

    async def send(self, msg: Message) -> Receipt:
        """Send *msg.text* to the recipient's phone; the message id is the idempotency token."""
        phone = msg.recipient.phone
        if not phone:
            raise ChannelError(f"{msg.id}: recipient has no phone number", retryable=False)
        sid = await asyncio.to_thread(self._create, msg.id, phone, msg.text)
        logger.info(
            "sms %s alarm %s to worker %s: %s", msg.id, msg.alarm_id, msg.recipient.worker_id, sid
        )
        return Receipt(provider_id=sid, channel=ChannelKind.SMS, sent_at=self._clock())

    def close(self) -> None:
        """Release the HTTP connection pool."""
        if self._http.session is not None:
            self._http.session.close()

    def _create(self, msg_id: str, to: str, body: str) -> str:
        _idempotency_token.set(msg_id)
        try:
            created = self._client.messages.create(
                to=to, from_=self._settings.from_number, body=body
            )
        except TwilioRestException as err:
            raise _rest_error(msg_id, err) from err
        except requests.Timeout as err:
            raise ChannelError(f"{msg_id}: Twilio timed out", retryable=True) from err
        except requests.ConnectionError as err:
            raise ChannelError(f"{msg_id}: Twilio unreachable: {err}", retryable=True) from err
        except requests.RequestException as err:
            raise ChannelError(f"{msg_id}: Twilio request failed: {err}", retryable=False) from err
        except (TwilioException, json.JSONDecodeError) as err:
            # A 2xx we could not read may still have been accepted; the token makes a retry safe.
            raise ChannelError(
                f"{msg_id}: unreadable Twilio answer: {err}", retryable=True
            ) from err
        return _sid(created)


def _rest_error(msg_id: str, err: TwilioRestException) -> ChannelError:
    # 429 is Twilio's "too many requests": a 4xx that waiting cures.
    retryable = err.status >= 500 or err.status == 429
    return ChannelError(
        f"{msg_id}: Twilio {err.status} code {err.code}: {err.msg}",
        retryable=retryable,
        status=err.status,
    )


def _sid(created: Any) -> str:
    sid = getattr(created, "sid", None)
    return str(sid) if sid else ""
