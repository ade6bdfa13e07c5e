"""Staff accounts and sessions: argon2 hashes, roles, disabling, expiry, CSRF comparison."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from cloud.console.sessions import csrf_matches, end_session, find_session, start_session
from cloud.console.tables import create_console_tables, users
from cloud.console.users import (
    Role,
    UserError,
    add_user,
    authenticate,
    disable_user,
    set_password,
)

PW = "a long enough password"


@pytest.fixture
def db(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    create_console_tables(engine)
    return engine


def test_a_user_signs_in_with_the_password_kept_only_as_an_argon2_hash(db: sa.Engine) -> None:
    add_user(db, "Chen.Li", PW, Role.DISPATCHER)
    with db.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PW not in stored
    staff = authenticate(db, "chen.li", PW)
    assert staff is not None and staff.username == "chen.li" and staff.role is Role.DISPATCHER
    assert authenticate(db, "chen.li", PW + "x") is None
    assert authenticate(db, "nobody", PW) is None


def test_names_passwords_and_duplicates_are_checked(db: sa.Engine) -> None:
    with pytest.raises(UserError, match="too short"):
        add_user(db, "a", "short", Role.VIEWER)
    with pytest.raises(UserError, match="user name"):
        add_user(db, "bad name!", PW, Role.VIEWER)
    add_user(db, "a", PW, Role.VIEWER)
    with pytest.raises(UserError, match="exists"):
        add_user(db, "A", PW, Role.ADMIN)
    with pytest.raises(UserError, match="no user"):
        set_password(db, "ghost", PW)


def test_disable_and_new_password_end_the_sessions(db: sa.Engine) -> None:
    staff = add_user(db, "w", PW, Role.ADMIN)
    found = authenticate(db, staff, PW)
    assert found is not None
    token, session = start_session(db, found, now=1000.0, ttl_s=60)
    assert find_session(db, token, 1001.0) == session
    set_password(db, "w", PW + "2")
    assert find_session(db, token, 1001.0) is None
    assert authenticate(db, "w", PW) is None and authenticate(db, "w", PW + "2") is not None
    token, _ = start_session(db, found, now=1000.0, ttl_s=60)
    disable_user(db, "w")
    assert find_session(db, token, 1001.0) is None
    assert authenticate(db, "w", PW + "2") is None


def test_sessions_expire_and_end(db: sa.Engine) -> None:
    add_user(db, "v", PW, Role.VIEWER)
    staff = authenticate(db, "v", PW)
    assert staff is not None and not staff.role.can_act
    token, session = start_session(db, staff, now=1000.0, ttl_s=60)
    assert find_session(db, token, 1059.0) is not None
    assert find_session(db, token, 1060.0) is None
    token, _ = start_session(db, staff, now=2000.0, ttl_s=60)
    end_session(db, token)
    assert find_session(db, token, 2001.0) is None
    assert find_session(db, "not-a-token", 2001.0) is None
    assert csrf_matches(session.csrf, session.csrf)
    assert not csrf_matches(session.csrf, None) and not csrf_matches(session.csrf, "x")


def test_failed_sign_ins_are_throttled_per_name_and_per_address() -> None:
    from cloud.console.throttle import MAX_FAILURES, MAX_FAILURES_PER_ADDRESS, SignInThrottle

    now = [0.0]
    throttle = SignInThrottle(lambda: now[0])
    for _ in range(MAX_FAILURES):
        assert not throttle.blocked("chen", "10.0.0.1")
        throttle.failed("chen", "10.0.0.1")
    assert throttle.blocked("chen", "10.0.0.9")  # the name, from anywhere
    assert not throttle.blocked("lin", "10.0.0.1")  # the office's address still works
    for n in range(MAX_FAILURES_PER_ADDRESS):
        throttle.failed(f"u{n}", "10.0.0.2")
    assert throttle.blocked("someone", "10.0.0.2")
    now[0] = 301.0
    assert not throttle.blocked("chen", "10.0.0.1") and not throttle.blocked("x", "10.0.0.2")


def test_ensure_user_creates_or_resets_a_fixed_account(db: sa.Engine) -> None:
    from cloud.console.users import ensure_user

    assert ensure_user(db, "demo", PW, Role.VIEWER) is True
    assert ensure_user(db, "demo", PW + "!", Role.DISPATCHER) is False
    staff = authenticate(db, "demo", PW + "!")
    assert staff is not None and staff.role is Role.DISPATCHER
