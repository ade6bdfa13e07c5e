"""The gateway against real simulators and a real Mosquitto, in this process.

Commands from the cloud get replies; bad field input (silent unit, CRC errors, exception
responses, garbage values) becomes quality flags and counters, never a crash; the retained
status says online, and offline after a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.gateway import run_gateway
from firmware_sim import SimulatorSet
from gridalarm.brokers import Mosquitto
from rigs.gateway import rig_sim_config, sequenced, write_gateway_config
from tests.support import Recorder, until
from wire import Command, encode
from wire.topics import command_topic

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def running_gateway(
    broker: Mosquitto, tmp_path: Path
) -> AsyncIterator[tuple[SimulatorSet, Path, Recorder]]:
    recorder = Recorder(broker.port, "ga/v1/gw-t/#", client_id=f"rec-{time.monotonic_ns()}")
    async with SimulatorSet.from_config(rig_sim_config()) as sims:
        path = write_gateway_config(sims, broker, tmp_path / "gw")
        task = asyncio.create_task(run_gateway(path))
        try:
            await until(
                lambda: len({m["dev"] for m in sequenced(recorder.snapshot())}) >= 5,
                20,
                "all devices",
            )
            yield sims, path, recorder
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            recorder.close()


def send_command(port: int, command: Command) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"cloud-{command.id}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(command_topic("gw-t", command.id), encode(command), qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def reply(recorder: Recorder, command_id: str) -> dict[str, Any] | None:
    for topic, payload, _ in recorder.snapshot():
        if topic == f"ga/v1/gw-t/cmd/{command_id}/reply":
            data: dict[str, Any] = json.loads(payload)
            return data
    return None


async def test_commands_get_replies(broker: Mosquitto, tmp_path: Path) -> None:
    async with running_gateway(broker, tmp_path) as (sims, path, recorder):
        send_command(broker.port, Command(id="c-ping", cmd="ping", ts=time.time()))
        pong = await until(lambda: reply(recorder, "c-ping"), 10, "ping reply")
        assert pong["ok"] and pong["result"]["pong"] is True

        sims.device("smk-0001").trigger("smoke")
        send_command(
            broker.port,
            Command(id="c-read", cmd="read-now", ts=time.time(), args={"device": "smk-0001"}),
        )
        read = await until(lambda: reply(recorder, "c-read"), 10, "read-now reply")
        assert read["ok"] and read["result"]["values"]["alarm"] is True

        # silence the sounder: register 5 of the smoke detector
        send_command(
            broker.port,
            Command(
                id="c-write",
                cmd="write-register",
                ts=time.time(),
                args={"device": "smk-0001", "address": 5, "value": 1},
            ),
        )
        wrote = await until(lambda: reply(recorder, "c-write"), 10, "write-register reply")
        assert wrote["ok"], wrote
        assert sims.device("smk-0001").truth()["sounder_silenced"] is True

        send_command(
            broker.port,
            Command(id="c-bad", cmd="read-now", ts=time.time(), args={"device": "nope"}),
        )
        bad = await until(lambda: reply(recorder, "c-bad"), 10, "error reply")
        assert bad["ok"] is False and "unknown device" in bad["error"]

        # reload with one device fewer; a broken file is refused and the old config stays
        text = path.read_text()
        path.write_text(text.replace("unit: 1\n", "unit: 999\n", 1))
        send_command(broker.port, Command(id="c-reload-bad", cmd="reload-config", ts=time.time()))
        refused = await until(lambda: reply(recorder, "c-reload-bad"), 10, "refused reload")
        assert refused["ok"] is False and "gateway.yaml:" in refused["error"]
        path.write_text(text)
        send_command(broker.port, Command(id="c-reload", cmd="reload-config", ts=time.time()))
        reloaded = await until(lambda: reply(recorder, "c-reload"), 10, "reload reply")
        assert reloaded["ok"] and reloaded["result"]["devices"] == 5


@pytest.mark.parametrize(
    ("fault", "expect"),
    [
        ("silent", "comm_error"),
        ("crc", "comm_error"),
        ("exception", "comm_error"),
        ("garbage", "invalid"),
    ],
)
async def test_bad_field_input_becomes_quality_flags(
    broker: Mosquitto, tmp_path: Path, fault: str, expect: str
) -> None:
    async with running_gateway(broker, tmp_path) as (sims, path, recorder):
        sims.device("smk-0002").set_fault(fault)

        def flagged() -> bool:
            for m in sequenced(recorder.snapshot()):
                if m["t"] == "data" and m["dev"] == "smk-0002":
                    if expect == "comm_error" and m["q"] == "comm_error":
                        return True
                    if expect == "invalid" and m["invalid"]:
                        return True
            return False

        await until(flagged, 15, f"a {expect} flag for fault {fault}")

        def error_counted() -> bool:
            status = json.loads((path.parent / "status.json").read_text())
            counters = status["devices"].get("smk-0002", {}).get("counters", {})
            return sum(v for k, v in counters.items() if k != "good") > 0

        await until(error_counted, 5, "the status file to count the errors")
        # the other devices on the same bus keep reporting good data
        n_before = len([m for m in sequenced(recorder.snapshot()) if m["dev"] == "smk-0001"])
        sims.device("smk-0001").trigger("smoke")
        await until(
            lambda: (
                len([m for m in sequenced(recorder.snapshot()) if m["dev"] == "smk-0001"])
                > n_before
            ),
            10,
            "the healthy neighbour to keep reporting",
        )
        sims.device("smk-0002").set_fault("none")
        mark = len(recorder.snapshot())
        await until(
            lambda: any(
                m["dev"] == "smk-0002"
                and m["t"] == "data"
                and m["q"] == "good"
                and not m["invalid"]
                for m in sequenced(recorder.snapshot()[mark:])
            ),
            30,
            "recovery to good data",
        )


async def test_retained_status_online_then_offline(broker: Mosquitto, tmp_path: Path) -> None:
    async with running_gateway(broker, tmp_path) as (_sims, _path, recorder):
        statuses = [json.loads(p) for t, p, _ in recorder.snapshot() if t.endswith("/status")]
        assert statuses and statuses[-1]["state"] == "online"
    late = Recorder(broker.port, "ga/v1/gw-t/status", client_id="late-joiner")
    try:
        got = await until(late.snapshot, 10, "the retained status")
        assert json.loads(got[-1][1])["state"] == "offline"
        assert got[-1][2] is True, "status is retained"
    finally:
        late.close()
