"""Errors raised by the notification boundary; library errors are translated into these."""

from __future__ import annotations


class NotifyError(Exception):
    """Root of every error raised by `cloud.notify`."""


class ConfigError(NotifyError):
    """A channel is missing or has invalid configuration (names the variable or field)."""


class ChannelError(NotifyError):
    """A send failed; `retryable` tells the outbox whether trying again can help."""

    def __init__(self, reason: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status

    def __repr__(self) -> str:
        return f"ChannelError({self.reason!r}, retryable={self.retryable}, status={self.status})"


class PushEndpointRefused(NotifyError):
    """A push subscription's endpoint is not an allowed push service (or is internal)."""


class TemplateError(NotifyError):
    """A message cannot be rendered within one SMS even with every optional field dropped."""


class LinkError(NotifyError):
    """A signed link token was refused."""


class LinkMalformed(LinkError):
    """The token is not a token at all (bad characters, too short, bad encoding)."""


class LinkForged(LinkError):
    """The token's signature does not match: tampered with, or signed with another secret."""


class LinkExpired(LinkError):
    """The token is authentic but past its expiry; the ids are kept for a friendly page."""

    def __init__(self, worker_id: str, alarm_id: str) -> None:
        super().__init__(f"link for worker {worker_id} alarm {alarm_id} has expired")
        self.worker_id = worker_id
        self.alarm_id = alarm_id
