"""deploy/postgresql/gridalarm.conf works on a real PostgreSQL: the server starts with it
included, every setting in it is applied, and the ones the workers rely on read back."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.postgres import find_bin, postgres_server
from tests.support import need_service

SNIPPET = Path(__file__).parents[2] / "deploy" / "postgresql" / "gridalarm.conf"


def _as_server_user(cmd: list[str]) -> list[str]:
    # the server's files belong to `postgres` when the tests run as root (tests/postgres.py)
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def include_and_restart(engine: sa.Engine, bindir: Path) -> None:
    """Include the snippet from the running server's postgresql.conf and restart it."""
    with engine.connect() as conn:
        config = Path(conn.execute(sa.text("SHOW config_file")).scalar_one())
        data = Path(conn.execute(sa.text("SHOW data_directory")).scalar_one())
    engine.dispose()
    copy = data / "gridalarm.conf"
    shutil.copyfile(SNIPPET, copy)
    if os.geteuid() == 0:
        shutil.chown(copy, "postgres")
    with config.open("a", encoding="utf-8") as f:
        f.write(f"\ninclude '{copy}'\n")
    # -l: the restarted server must not inherit our captured stdout (run would wait for it)
    log = data / "restart.log"
    done = subprocess.run(
        _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log),
                         "-w", "-t", "60", "-m", "fast", "restart"]),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"the server refused the settings:\n{log.read_text()}"


@pytest.fixture(scope="module")
def server() -> Iterator[sa.Engine]:
    bindir = find_bin()
    if bindir is None:
        need_service("PostgreSQL (apt-get install postgresql)")
    assert bindir is not None
    with postgres_server() as url:
        engine = sa.create_engine(url)
        include_and_restart(engine, bindir)
        try:
            yield engine
        finally:
            engine.dispose()


def test_every_setting_of_the_snippet_is_applied(server: sa.Engine) -> None:
    with server.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT name, applied, error FROM pg_file_settings WHERE sourcefile LIKE :f"),
            {"f": "%/gridalarm.conf"},
        ).all()
    named = {
        line.split("=", 1)[0].strip()
        for line in SNIPPET.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    assert {row.name for row in rows} == named
    assert [row for row in rows if not row.applied or row.error] == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_connections", "200"),
        ("synchronous_commit", "on"),
        ("fsync", "on"),
        ("idle_in_transaction_session_timeout", "5s"),
        ("statement_timeout", "30s"),
        ("lock_timeout", "10s"),
        ("wal_level", "replica"),
    ],
)
def test_what_the_workers_rely_on_reads_back(server: sa.Engine, name: str, value: str) -> None:
    with server.connect() as conn:
        assert conn.execute(sa.text(f"SHOW {name}")).scalar_one() == value


def test_a_lock_wait_gives_up_only_after_an_idle_transaction_is_ended() -> None:
    # a takeover waiting behind a stopped owner must get the lock, not time out first
    text = SNIPPET.read_text(encoding="utf-8")
    seconds = {
        key: int(text.split(f"\n{key} = ", 1)[1].split("s", 1)[0])
        for key in ("idle_in_transaction_session_timeout", "lock_timeout")
    }
    assert seconds["lock_timeout"] > seconds["idle_in_transaction_session_timeout"]
