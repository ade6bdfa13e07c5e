"""Signatures on requests between us and a brigade, both ways (as Stripe and GitHub do).

``X-Gridalarm-Timestamp: <unix seconds>`` and ``X-Gridalarm-Signature: v1=<hex>``, where the
hex is HMAC-SHA256 with the brigade's signing secret over ``<timestamp>.<raw body>``. Several
``v1=`` entries, comma-separated, may stand side by side while a secret is rotated. A receiver
refuses a timestamp more than ``TOLERANCE_S`` from its clock (a replayed request is old).
Pure: the clock is passed in.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets

TIMESTAMP_HEADER = "X-Gridalarm-Timestamp"
SIGNATURE_HEADER = "X-Gridalarm-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SCHEME = "v1"
TOLERANCE_S = 300
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


class BadSignature(enum.StrEnum):
    """Why a signed request was refused (for the log; the caller gets 401)."""

    MISSING = "missing"
    MALFORMED = "malformed"
    STALE = "stale"  # timestamp outside the tolerance: a replay, or a wrong clock
    MISMATCH = "mismatch"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def sign(secret: str, body: bytes, now: float) -> dict[str, str]:
    """The headers that sign *body* at *now*."""
    ts = int(now)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: f"{SCHEME}={signature(secret, ts, body)}"}


def verify(
    secrets_: list[str], timestamp: str | None, header: str | None, body: bytes, now: float
) -> BadSignature | None:
    """None when one of *secrets_* signed *body* at a fresh *timestamp*; else why not."""
    if not timestamp or not header:
        return BadSignature.MISSING
    try:
        ts = int(timestamp)
    except ValueError:
        return BadSignature.MALFORMED
    if abs(now - ts) > TOLERANCE_S:
        return BadSignature.STALE
    given = [v for k, _, v in (p.strip().partition("=") for p in header.split(",")) if k == SCHEME]
    if not given:
        return BadSignature.MALFORMED
    ok = any(
        hmac.compare_digest(signature(s, ts, body), g) for s in secrets_ for g in given
    )  # every pair compared: the time taken says nothing of which one was close
    return None if ok else BadSignature.MISMATCH
