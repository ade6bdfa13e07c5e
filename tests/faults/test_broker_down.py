"""Fault 1: Mosquitto down while the gateway buffers; field events happen meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridalarm.brokers import Mosquitto
from tests.faults.durations import LENGTH
from tests.faults.loop import fault_loop
from tests.faults.report import Row
from tests.support import until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(LENGTH.timeout_s(LENGTH.broker_down_s))]


async def test_broker_down_while_the_gateway_buffers(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault_table: list[Row]
) -> None:
    async with fault_loop(broker, tmp_path, monkeypatch) as loop:
        loop.begin()
        broker.stop()
        loop.field_event("smk-0001", "smoke")
        loop.field_event("mh-0001", "tilt")
        gw = loop.gw
        assert gw is not None
        await until(lambda: gw.status().get("outbox_depth", 0) >= 2, 15, "the gateway to buffer")
        await loop.hold(LENGTH.broker_down_s)
        broker.start()
        row = await loop.outcome(1, f"broker down {LENGTH.broker_down_s:g} s, gateway buffering")
    fault_table.append(row)
    assert row.ok, "\n".join(row.problems)
