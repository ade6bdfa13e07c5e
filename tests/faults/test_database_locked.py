"""Fault 4: the alarm database locked for 30 s (``BEGIN EXCLUSIVE`` held from here) while an
alarm is live: its SMS still leave (late is fine, never lost), /readyz shows the fault, and
each part that waits logs one line when it starts and one when it ends."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from gridalarm.brokers import Mosquitto
from tests.faults.durations import LENGTH
from tests.faults.loop import fault_loop
from tests.faults.report import Row

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(LENGTH.timeout_s(LENGTH.database_locked_s)),
]


async def test_database_locked_30_s_during_a_live_alarm(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault_table: list[Row]
) -> None:
    async with fault_loop(broker, tmp_path, monkeypatch) as loop:
        await loop.live_alarm()
        path = loop.database_url.removeprefix("sqlite:///")
        lock = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            loop.begin()
            await asyncio.to_thread(lock.execute, "BEGIN EXCLUSIVE")
            loop.field_event("mh-0001", "tilt")
            await loop.hold(LENGTH.database_locked_s)
            await asyncio.to_thread(lock.execute, "ROLLBACK")
        finally:
            lock.close()
        row = await loop.outcome(4, f"alarm database locked {LENGTH.database_locked_s:g} s")
        reasons = loop.watch.reasons(loop.t_fault, loop.t_recovered or loop.t_heal)
        if not any("locked" in why for why in reasons.values()):
            row.problems.append(f"/readyz never named the lock: {reasons}")
        if not loop.health_lines():
            row.problems.append("no 'not ready' line in the cloud's log")
        if others := loop.other_lines_naming("locked"):
            row.problems.append(f"{len(others)} more log lines named the lock: {others[:3]}")
    fault_table.append(row)
    assert row.ok, "\n".join(row.problems)
