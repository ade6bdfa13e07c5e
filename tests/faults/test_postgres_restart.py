"""Fault 5: the PostgreSQL server holding alarms and checkpoints (the timers come from its
tables) stopped and started again while an alarm escalates and another field event comes in."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gridalarm.brokers import Mosquitto
from tests.faults.durations import LENGTH
from tests.faults.loop import fault_loop
from tests.faults.report import Row
from tests.postgres import find_bin, postgres_server
from tests.support import need_service

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(LENGTH.timeout_s(LENGTH.postgres_down_s)),
]


class PostgresControl:
    """Stop and start the throw-away server of tests/postgres.py on its own data directory."""

    def __init__(self, url: str) -> None:
        bindir = find_bin()
        assert bindir is not None
        self.pg_ctl = str(bindir / "pg_ctl")
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            self.data = Path(str(conn.exec_driver_sql("SHOW data_directory").scalar()))
        engine.dispose()
        # the options it was started with, less the data directory pg_ctl passes itself
        args = shlex.split((self.data / "postmaster.opts").read_text())[1:]
        i = args.index("-D")
        self.options = shlex.join(args[:i] + args[i + 2 :])

    def _run(self, *args: str) -> None:
        cmd = [self.pg_ctl, "-D", str(self.data), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses root; the server runs as `postgres`
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    async def stop(self) -> None:
        await asyncio.to_thread(self._run, "-m", "fast", "-w", "stop")

    async def start(self) -> None:
        log = str(self.data.parent / "restarted.log")
        await asyncio.to_thread(self._run, "-w", "-l", log, "-o", self.options, "start")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if find_bin() is None:
        need_service("PostgreSQL (apt-get install postgresql)")
    with postgres_server() as url:
        yield url


async def test_postgres_restarted_during_a_live_alarm(
    broker: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault_table: list[Row],
    postgres_url: str,
) -> None:
    server = PostgresControl(postgres_url)
    async with fault_loop(broker, tmp_path, monkeypatch, database_url=postgres_url) as loop:
        await loop.live_alarm()
        loop.begin()
        await server.stop()
        loop.field_event("mh-0001", "tilt")
        await loop.hold(LENGTH.postgres_down_s)
        await server.start()
        row = await loop.outcome(5, f"PostgreSQL down {LENGTH.postgres_down_s:g} s, then started")
    fault_table.append(row)
    assert row.ok, "\n".join(row.problems)
