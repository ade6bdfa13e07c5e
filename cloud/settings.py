"""Secrets and overrides from the environment, read once, in one place (pydantic-settings).

Site files (cloud.yaml, lifecycle, rules, district) can be checked in; what must not be —
provider credentials, the link key, the admin token, passwords — comes from here, e.g. a
systemd ``EnvironmentFile``. What each service makes of them is checked where that service
is built (``cloud.dispatch.credentials``), all at once, before anything starts.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str, description: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(name), description=description)


class CloudSettings(BaseSettings):
    """Every environment variable the cloud worker reads."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=True)

    twilio_account_sid: str | None = _env("TWILIO_ACCOUNT_SID", "Twilio account SID")
    twilio_auth_token: SecretStr | None = _env(
        "TWILIO_AUTH_TOKEN", "Twilio auth token: signs API calls and checks inbound SMS"
    )
    twilio_from_number: str | None = _env("TWILIO_FROM_NUMBER", "Sender number, E.164")
    twilio_api_url: str | None = _env(
        "GRIDALARM_TWILIO_API_URL", "A Twilio-compatible base URL (SMS gateway or stand-in)"
    )
    vapid_private_key: SecretStr | None = _env(
        "GRIDALARM_VAPID_PRIVATE_KEY", "Web Push key (raw base64url P-256); unset: no push"
    )
    vapid_public_key: str | None = _env(
        "GRIDALARM_VAPID_PUBLIC_KEY", "Its public key; derived from the private key if unset"
    )
    vapid_subject: str | None = _env(
        "GRIDALARM_VAPID_SUBJECT", "mailto: or https: contact for push services"
    )
    push_hosts: str | None = _env(
        "GRIDALARM_PUSH_HOSTS",
        "Push services allowed beside the public ones, comma-separated host names "
        "(http://NAME for a closed network's plain-http service)",
    )
    link_secret: SecretStr | None = _env(
        "GRIDALARM_LINK_SECRET", "Key of the workers' signed links (at least 16 characters)"
    )
    admin_token: SecretStr | None = _env(
        "GRIDALARM_ADMIN_TOKEN", "Bearer token of the registry API; unset: API off"
    )
    mqtt_password: SecretStr | None = _env("GRIDALARM_MQTT_PASSWORD", "Ingest broker password")
    worker_id: str | None = _env(
        "GRIDALARM_WORKER_ID",
        "This worker's name among several (scaled mode); default: host name and process id",
    )
    influx_token: SecretStr | None = _env("GRIDALARM_INFLUX_TOKEN", "InfluxDB token")
