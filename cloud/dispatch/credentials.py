"""What the dispatch side makes of the environment's settings: Twilio, Web Push, the web app.

``problems`` checks them all at once, naming each variable, before anything starts.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr, ValidationError

from cloud.notify import PushServices, TwilioSettings, VapidSettings
from cloud.notify.errors import NotifyError
from cloud.settings import CloudSettings
from cloud.web.settings import WebSettings
from wire.yamlconf import ConfigIssue

ENVIRONMENT = "environment"
LINK_SECRET_MIN = 16


def twilio(s: CloudSettings) -> TwilioSettings | None:
    """SMS settings; None when no TWILIO_* variable is set (call ``problems()`` first)."""
    if not _twilio_set(s):
        return None
    return TwilioSettings.model_validate(
        {
            "account_sid": s.twilio_account_sid,
            "auth_token": s.twilio_auth_token,
            "from_number": s.twilio_from_number,
            "api_url": s.twilio_api_url or None,
        }
    )


def vapid(s: CloudSettings) -> VapidSettings | None:
    if s.vapid_private_key is None or not s.vapid_private_key.get_secret_value():
        return None
    return VapidSettings(
        private_key=s.vapid_private_key,
        subject=s.vapid_subject or "",
        push_services=PushServices.from_env({"GRIDALARM_PUSH_HOSTS": s.push_hosts or ""}),
    )


def web(s: CloudSettings) -> WebSettings:
    return WebSettings.from_env(_web_environ(s))


def problems(s: CloudSettings) -> list[ConfigIssue]:
    """Every unusable setting, each naming its variable."""
    issues: list[ConfigIssue] = []
    if _twilio_set(s):
        token = s.twilio_auth_token
        values = {
            "TWILIO_ACCOUNT_SID": s.twilio_account_sid,
            "TWILIO_AUTH_TOKEN": token.get_secret_value() if token is not None else None,
            "TWILIO_FROM_NUMBER": s.twilio_from_number,
        }
        empty = [name for name, value in values.items() if not value]
        issues += [_issue(n, "empty or missing while TWILIO_* is in use") for n in empty]
        if not empty:
            issues += _validation(lambda: twilio(s), "TWILIO_*")
    secret = s.link_secret
    if secret is not None and len(secret.get_secret_value()) < LINK_SECRET_MIN:
        issues.append(_issue("GRIDALARM_LINK_SECRET", f"shorter than {LINK_SECRET_MIN} characters"))
    issues += _validation(lambda: vapid(s), "GRIDALARM_VAPID_*")
    issues += _validation(lambda: web(s), "GRIDALARM_ADMIN_TOKEN / GRIDALARM_VAPID_*")
    return issues


def _twilio_set(s: CloudSettings) -> bool:
    return any(
        v is not None for v in (s.twilio_account_sid, s.twilio_auth_token, s.twilio_from_number)
    )


def _web_environ(s: CloudSettings) -> dict[str, str]:
    pairs = {
        "GRIDALARM_ADMIN_TOKEN": s.admin_token,
        "GRIDALARM_VAPID_PRIVATE_KEY": s.vapid_private_key,
        "GRIDALARM_VAPID_PUBLIC_KEY": s.vapid_public_key,
        "GRIDALARM_VAPID_SUBJECT": s.vapid_subject,
    }
    return {
        k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in pairs.items() if v
    }


def _issue(field: str, message: str) -> ConfigIssue:
    return ConfigIssue(ENVIRONMENT, None, field, message)


def _validation(build: Any, field: str) -> list[ConfigIssue]:
    """Build one settings object; its validation errors as issues."""
    try:
        build()
    except ValidationError as err:
        return [
            _issue(field, f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}") for e in err.errors()
        ]
    except (ValueError, NotifyError) as err:  # the notify / web settings' own checks
        return [_issue(field, str(err))]
    return []
