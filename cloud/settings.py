"""Secrets and overrides from the environment, read once, in one place (pydantic-settings).

Site files (cloud.yaml, lifecycle, rules, district) can be checked in; what must not be —
provider credentials, the link key, the admin token, passwords — comes from here, e.g. a
systemd ``EnvironmentFile``. ``problems()`` lists every bad or half-set value at once.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.notify import TwilioSettings, VapidSettings
from cloud.web.settings import WebSettings
from wire.yamlconf import ConfigIssue

ENVIRONMENT = "environment"
TWILIO_VARS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER")
LINK_SECRET_MIN = 16


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
    link_secret: SecretStr | None = _env(
        "GRIDALARM_LINK_SECRET", "Key of the workers' signed links (at least 16 characters)"
    )
    admin_token: SecretStr | None = _env(
        "GRIDALARM_ADMIN_TOKEN", "Bearer token of the registry API; unset: API off"
    )
    mqtt_password: SecretStr | None = _env("GRIDALARM_MQTT_PASSWORD", "Ingest broker password")
    influx_token: SecretStr | None = _env("GRIDALARM_INFLUX_TOKEN", "InfluxDB token")

    def twilio(self) -> TwilioSettings | None:
        """SMS settings; None when no TWILIO_* variable is set (call ``problems()`` first)."""
        if not self._twilio_set():
            return None
        return TwilioSettings.model_validate(
            {
                "account_sid": self.twilio_account_sid,
                "auth_token": self.twilio_auth_token,
                "from_number": self.twilio_from_number,
                "api_url": self.twilio_api_url or None,
            }
        )

    def vapid(self) -> VapidSettings | None:
        if self.vapid_private_key is None or not self.vapid_private_key.get_secret_value():
            return None
        return VapidSettings(private_key=self.vapid_private_key, subject=self.vapid_subject or "")

    def web(self) -> WebSettings:
        return WebSettings.from_env(self._web_environ())

    def problems(self) -> list[ConfigIssue]:
        """Every unusable setting, each naming its variable."""
        issues: list[ConfigIssue] = []
        if self._twilio_set():
            token = self.twilio_auth_token
            values = {
                "TWILIO_ACCOUNT_SID": self.twilio_account_sid,
                "TWILIO_AUTH_TOKEN": token.get_secret_value() if token is not None else None,
                "TWILIO_FROM_NUMBER": self.twilio_from_number,
            }
            empty = [name for name, value in values.items() if not value]
            issues += [_issue(n, "empty or missing while TWILIO_* is in use") for n in empty]
            if not empty:
                issues += _validation(self.twilio, "TWILIO_*")
        secret = self.link_secret
        if secret is not None and len(secret.get_secret_value()) < LINK_SECRET_MIN:
            issues.append(
                _issue("GRIDALARM_LINK_SECRET", f"shorter than {LINK_SECRET_MIN} characters")
            )
        issues += _validation(self.vapid, "GRIDALARM_VAPID_*")
        issues += _validation(self.web, "GRIDALARM_ADMIN_TOKEN / GRIDALARM_VAPID_*")
        return issues

    def _twilio_set(self) -> bool:
        return any(
            v is not None
            for v in (self.twilio_account_sid, self.twilio_auth_token, self.twilio_from_number)
        )

    def _web_environ(self) -> dict[str, str]:
        pairs = {
            "GRIDALARM_ADMIN_TOKEN": self.admin_token,
            "GRIDALARM_VAPID_PRIVATE_KEY": self.vapid_private_key,
            "GRIDALARM_VAPID_PUBLIC_KEY": self.vapid_public_key,
            "GRIDALARM_VAPID_SUBJECT": self.vapid_subject,
        }
        return {
            k: v.get_secret_value() if isinstance(v, SecretStr) else v
            for k, v in pairs.items()
            if v
        }


def _issue(field: str, message: str) -> ConfigIssue:
    return ConfigIssue(ENVIRONMENT, None, field, message)


def _validation(build: Any, field: str) -> list[ConfigIssue]:
    """Build one settings object; its validation errors as issues."""
    try:
        build()
    except ValidationError as err:
        return [
            _issue(field, f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
            for e in err.errors()
        ]
    except ValueError as err:  # the notify / web settings' own checks
        return [_issue(field, str(err))]
    return []
