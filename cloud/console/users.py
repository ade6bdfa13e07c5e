"""Staff accounts of the console: a name, an argon2id password hash, a role, disabled or not.

``gridalarm cloud user add|passwd|disable`` is a thin shell over these functions.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from cloud.console.tables import create_console_tables, sessions, users

MIN_PASSWORD = 10
USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_HASHER = PasswordHasher()
# verified against when the name is unknown, so a wrong name costs what a wrong password does
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


class Role(enum.StrEnum):
    """What a staff member may do: look, act on alarms, or also manage the console."""

    VIEWER = "viewer"
    DISPATCHER = "dispatcher"
    ADMIN = "admin"

    @property
    def can_act(self) -> bool:
        """Dispatchers and admins act on alarms; viewers only look."""
        return self is not Role.VIEWER


class UserError(ValueError):
    """A user cannot be added or changed as asked (the message says why)."""


@dataclass(frozen=True, slots=True)
class Staff:
    """A signed-in staff member."""

    username: str
    role: Role


def check_username(name: str) -> str:
    """*name* lower-cased, or UserError: 1-64 of a-z 0-9 . _ -."""
    name = name.strip().lower()
    if not name or len(name) > 64 or not set(name) <= USERNAME_CHARS:
        raise UserError(f"user name {name!r}: use 1-64 characters of a-z 0-9 . _ -")
    return name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password too short: at least {MIN_PASSWORD} characters")


def add_user(db: Engine, name: str, password: str, role: Role) -> str:
    """Create an account; UserError when the name is taken or the password too short."""
    name = check_username(name)
    check_password(password)
    create_console_tables(db)
    now = time.time()
    with db.begin() as conn:
        if conn.execute(sa.select(users.c.username).where(users.c.username == name)).first():
            raise UserError(f"user {name!r} exists already")
        conn.execute(
            sa.insert(users).values(
                username=name,
                password_hash=_HASHER.hash(password),
                role=role.value,
                disabled=False,
                created_at=now,
                password_changed_at=now,
            )
        )
    return name


def set_password(db: Engine, name: str, password: str) -> None:
    """Replace the password (and re-enable the account); its sessions end."""
    check_password(password)
    _update(
        db,
        name,
        password_hash=_HASHER.hash(password),
        disabled=False,
        password_changed_at=time.time(),
    )


def disable_user(db: Engine, name: str) -> None:
    """The account can no longer sign in; its sessions end."""
    _update(db, name, disabled=True)


def _update(db: Engine, name: str, **values: object) -> None:
    name = check_username(name)
    create_console_tables(db)
    with db.begin() as conn:
        if not conn.execute(
            sa.update(users).where(users.c.username == name).values(values)
        ).rowcount:
            raise UserError(f"no user {name!r}")
        conn.execute(sa.delete(sessions).where(sessions.c.username == name))


def authenticate(db: Engine, name: str, password: str) -> Staff | None:
    """The staff member if *password* is theirs and the account is enabled, else None."""
    try:
        name = check_username(name)
    except UserError:
        name = ""
    with db.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.username == name)).first()
    try:
        _HASHER.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled:
        return None
    return Staff(row.username, Role(row.role))


def find_staff(db: Engine, name: str) -> Staff | None:
    """The enabled account *name*, or None."""
    with db.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.username == name)).first()
    if row is None or row.disabled:
        return None
    return Staff(row.username, Role(row.role))


def has_users(db: Engine) -> bool:
    """Is there any account yet (the sign-in page says how to make the first)?"""
    with db.connect() as conn:
        return conn.execute(sa.select(users.c.username).limit(1)).first() is not None


def ensure_user(db: Engine, name: str, password: str, role: Role) -> bool:
    """The account *name* exists with *password* and *role* afterwards (a demo's or a test's
    fixed account); True when it was created, False when it was there and is now reset."""
    try:
        add_user(db, name, password, role)
    except UserError as err:
        if "exists" not in str(err):
            raise
        set_password(db, name, password)
        _update(db, name, role=role.value)
        return False
    return True


def list_users(db: Engine) -> list[dict[str, object]]:
    """Every account (no hashes): name, role, disabled, when made and when its password changed."""
    query = sa.select(
        users.c.username, users.c.role, users.c.disabled, users.c.created_at,
        users.c.password_changed_at,
    ).order_by(users.c.username)  # fmt: skip
    with db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
