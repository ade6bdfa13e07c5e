"""The web app's optional features: the registry API's admin token, the push button's key and
the Twilio token that turns on the SMS webhook."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from cloud.notify import ConfigError, PushServices, TwilioSettings
from cloud.notify.webpush import VapidSettings

ADMIN_TOKEN_MIN = 16
# base64url of an uncompressed P-256 point: 65 bytes, 0x04 first ("B" in base64url).
PUBLIC_KEY_PATTERN = r"^B[A-Za-z0-9_-]{86}$"


class WebSettings(BaseModel):
    """What turns on the registry API and the worker page's push button."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    admin_token: SecretStr | None = Field(
        default=None,
        min_length=ADMIN_TOKEN_MIN,
        description="GRIDALARM_ADMIN_TOKEN: bearer token of /api/registry; unset: API off (404)",
    )
    vapid_public_key: str | None = Field(
        default=None,
        pattern=PUBLIC_KEY_PATTERN,
        description="VAPID public key (base64url point), the page's applicationServerKey; "
        "unset: no push button",
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None,
        description="TWILIO_AUTH_TOKEN: the key Twilio signs webhook requests with; unset: "
        "no SMS webhook (404). Never empty: an empty key would verify forged requests",
    )

    push_services: PushServices = Field(
        default_factory=PushServices,
        description="the push services a stored subscription may point at (GRIDALARM_PUSH_HOSTS)",
    )

    @field_validator("twilio_auth_token")
    @classmethod
    def _token_not_blank(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and not token.get_secret_value().strip():
            raise ValueError("twilio_auth_token is empty: leave it unset to turn the webhook off")
        return token

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebSettings:
        """GRIDALARM_ADMIN_TOKEN; the VAPID public key: GRIDALARM_VAPID_PUBLIC_KEY or the
        one that belongs to GRIDALARM_VAPID_PRIVATE_KEY (they must agree when both are set);
        TWILIO_AUTH_TOKEN as ``TwilioSettings`` reads it (half-configured or empty: an error);
        GRIDALARM_PUSH_HOSTS."""
        public = env.get("GRIDALARM_VAPID_PUBLIC_KEY") or None
        vapid = VapidSettings.from_env(env)
        if vapid is not None:
            derived = public_key_of(vapid.private_key.get_secret_value())
            if public is not None and public != derived:
                raise ValueError(
                    "GRIDALARM_VAPID_PUBLIC_KEY does not belong to GRIDALARM_VAPID_PRIVATE_KEY"
                )
            public = derived
        token = env.get("GRIDALARM_ADMIN_TOKEN") or None
        try:
            twilio = TwilioSettings.from_env(env)
            push_services = PushServices.from_env(env)
        except ConfigError as err:
            raise ValueError(str(err)) from err
        try:
            return cls(
                admin_token=SecretStr(token) if token else None,
                vapid_public_key=public,
                twilio_auth_token=twilio.auth_token if twilio is not None else None,
                push_services=push_services,
            )
        except ValidationError as err:
            raise ValueError(f"web settings from the environment: {err}") from err


def public_key_of(private_key: str) -> str:
    """The base64url uncompressed public point of a raw base64url P-256 private scalar."""
    try:
        raw = base64.urlsafe_b64decode(private_key + "=" * (-len(private_key) % 4))
        if len(raw) != 32:
            raise ValueError("expected 32 raw bytes")
        key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except (ValueError, binascii.Error) as err:
        raise ValueError(f"GRIDALARM_VAPID_PRIVATE_KEY is not a P-256 key: {err}") from err
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode("ascii")
