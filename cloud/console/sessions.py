"""Server-side sessions: the cookie holds a random secret, the table its hash, the user, the
session's CSRF token and its expiry. Signing out or a password change ends them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.console.tables import sessions, users
from cloud.console.users import Role, Staff


@dataclass(frozen=True, slots=True)
class Session:
    """A live session: who, the CSRF token its forms carry, until when."""

    staff: Staff
    csrf: str
    expires_at: float


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(db: Engine, staff: Staff, now: float, ttl_s: float) -> tuple[str, Session]:
    """A new session for *staff*: (the cookie's secret, the session)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    with db.begin() as conn:
        conn.execute(sa.delete(sessions).where(sessions.c.expires_at <= now))
        conn.execute(
            sa.insert(sessions).values(
                token_hash=_hash(token),
                username=staff.username,
                csrf=csrf,
                created_at=now,
                expires_at=now + ttl_s,
            )
        )
    return token, Session(staff, csrf, now + ttl_s)


def find_session(db: Engine, token: str, now: float) -> Session | None:
    """The live session of the cookie's *token* (its account enabled), or None."""
    if not token or len(token) > 200:
        return None
    s, u = sessions, users
    query = (
        sa.select(s.c.username, s.c.csrf, s.c.expires_at, u.c.role, u.c.disabled)
        .join(u, u.c.username == s.c.username)
        .where(s.c.token_hash == _hash(token), s.c.expires_at > now)
    )
    with db.connect() as conn:
        row = conn.execute(query).first()
    if row is None or row.disabled:
        return None
    return Session(Staff(row.username, Role(row.role)), row.csrf, row.expires_at)


def end_session(db: Engine, token: str) -> None:
    """Sign out: the session is gone (a copied cookie stops working too)."""
    with db.begin() as conn:
        conn.execute(sa.delete(sessions).where(sessions.c.token_hash == _hash(token)))


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a form's CSRF token with the session's."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
