"""Fault 2: the gateway killed with SIGKILL, one field event just before, one while it is dead."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gridalarm.brokers import Mosquitto
from tests.faults.durations import LENGTH
from tests.faults.loop import fault_loop
from tests.faults.report import Row

pytestmark = [pytest.mark.integration, pytest.mark.timeout(LENGTH.timeout_s(LENGTH.gateway_dead_s))]


async def test_gateway_kill9_loses_and_doubles_nothing(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault_table: list[Row]
) -> None:
    async with fault_loop(broker, tmp_path, monkeypatch) as loop:
        assert loop.gw is not None
        loop.begin()
        loop.field_event("smk-0001", "smoke")
        await asyncio.to_thread(loop.gw.kill9)
        loop.field_event("mh-0001", "tilt")
        await loop.hold(LENGTH.gateway_dead_s)
        loop.gw.start()
        # a dead gateway is the field's trouble, not the cloud's: the worker stays ready
        row = await loop.outcome(2, "gateway kill -9", expect_red=False)
    fault_table.append(row)
    assert row.ok, "\n".join(row.problems)
