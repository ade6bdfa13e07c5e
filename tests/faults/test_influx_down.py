"""Fault 6: the InfluxDB readings server (VictoriaMetrics' /api/v2/write) down while field
events come in: alarms go on, and every reading is written once it is back."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.sinks.lineprotocol import ns_time
from gridalarm.brokers import Mosquitto
from tests.cloud.test_sinks_influx import VictoriaMetrics, vm  # noqa: F401 - the fixture
from tests.faults.durations import LENGTH
from tests.faults.loop import GATEWAY, fault_loop
from tests.faults.report import Row

pytestmark = [pytest.mark.integration, pytest.mark.timeout(LENGTH.timeout_s(LENGTH.influx_down_s))]


def stored(server: VictoriaMetrics) -> set[tuple[str, int]]:
    """(device, ms) of every sample the server holds for the rig's gateway."""
    rows = server.export(f'{{gateway="{GATEWAY}"}}')
    return {(row["metric"]["device"], ms) for row in rows for ms in row["timestamps"]}


async def test_influx_down_buffers_readings_and_alarms_go_on(
    broker: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault_table: list[Row],
    request: pytest.FixtureRequest,
) -> None:
    influx: VictoriaMetrics = request.getfixturevalue("vm")  # a real server, restartable
    sink = {"kind": "influx", "url": influx.url, "batch_size": 500}
    async with fault_loop(broker, tmp_path, monkeypatch, sink=sink) as loop:
        loop.begin()
        influx.stop()
        loop.field_event("smk-0001", "smoke")
        loop.field_event("mh-0001", "tilt")
        await loop.hold(LENGTH.influx_down_s)
        influx.start()
        wanted = {(dev, ns_time(ts) // 1_000_000) for dev, ts in loop.published_readings()}
        fault = f"InfluxDB down {LENGTH.influx_down_s:g} s"
        row = await loop.outcome(6, fault, lambda: wanted <= stored(influx))
    fault_table.append(row)
    assert row.ok, "\n".join(row.problems)
