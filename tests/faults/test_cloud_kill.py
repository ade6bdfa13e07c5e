"""Fault 3: the cloud killed with SIGKILL while an alarm waits for its next escalation step."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gridalarm.brokers import Mosquitto
from tests.faults.loop import fault_loop
from tests.faults.report import Row

pytestmark = pytest.mark.integration


async def test_cloud_kill9_during_an_escalation_wait(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault_table: list[Row]
) -> None:
    async with fault_loop(broker, tmp_path, monkeypatch) as loop:
        await loop.live_alarm()
        loop.begin()
        await asyncio.to_thread(loop.cloud.kill9)
        loop.field_event("mh-0001", "tilt")
        # nothing to heal by hand: the supervisor restarts the cloud, as systemd would; dead
        # and starting it cannot answer /readyz, so only the red and the recovery count here
        row = await loop.outcome(3, "cloud kill -9 during an escalation wait", expect_answers=False)
    fault_table.append(row)
    assert row.ok, "\n".join(row.problems)
