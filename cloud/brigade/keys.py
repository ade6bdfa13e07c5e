"""API keys for brigades: made once, shown once, stored as a hash, checked in constant time.

A key is ``gab_<key id>_<secret>``: the key id finds the row without a scan, the secret is
256 random bits. Because the secret is that long, a single SHA-256 is a sound way to store
it (GitHub and Stripe do the same for their tokens); a slow password hash would only slow
every API call. Pure: no I/O, the clock is passed in.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "gab"
TOKEN = re.compile(r"^gab_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class Scope(enum.StrEnum):
    """What a key may do."""

    ALARMS_READ = "alarms:read"  # read the brigade's alarms and their stream
    STATUS_WRITE = "status:write"  # post the brigade's status and requests back


class Refusal(enum.StrEnum):
    """Why a key was refused (said to the log, never to the caller: it gets 401 / 403)."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    WRONG_SECRET = "wrong_secret"  # noqa: S105 - a reason's name, not a secret
    REVOKED = "revoked"
    EXPIRED = "expired"
    SCOPE = "scope"  # 403: a known, valid key without the scope asked for

    @property
    def status(self) -> int:
        return 403 if self is Refusal.SCOPE else 401


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just made: ``token`` is shown once; only ``key_id`` and ``digest`` are kept."""

    key_id: str
    token: str
    digest: str


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key as kept: no secret."""

    key_id: str
    brigade_id: str
    digest: str
    scopes: frozenset[Scope]
    created_at: float
    expires_at: float | None
    revoked_at: float | None


def make_key() -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewKey(key_id, f"{PREFIX}_{key_id}_{secret}", digest(secret))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_id_of(token: str) -> str | None:
    """The key id a presented token claims, or None when it is not shaped like a key."""
    m = TOKEN.fullmatch(token)
    return m[1] if m else None


def check(token: str, stored: StoredKey | None, scope: Scope, now: float) -> Refusal | None:
    """None when *token* is *stored*'s, alive and holds *scope*; else why not."""
    m = TOKEN.fullmatch(token)
    if m is None:
        return Refusal.MALFORMED
    if stored is None or stored.key_id != m[1]:
        return Refusal.UNKNOWN
    if not hmac.compare_digest(digest(m[2]), stored.digest):
        return Refusal.WRONG_SECRET
    return _lifetime(stored, now) or (None if scope in stored.scopes else Refusal.SCOPE)


def _lifetime(stored: StoredKey, now: float) -> Refusal | None:
    if stored.revoked_at is not None and stored.revoked_at <= now:
        return Refusal.REVOKED
    if stored.expires_at is not None and stored.expires_at <= now:
        return Refusal.EXPIRED
    return None
