"""Simulators → gateway → Mosquitto → cloud, all real: the alarm transitions in the database.

A smoke alarm, a flood rising through warning to danger and back, a tilted cover and four
e-bike entries produce exactly the expected transitions; a second smoke detector in the same
building within 120 s marks the fire confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloud.lifecycle.rule_alarms import list_alarms, list_events
from cloud.worker import Cloud, cloud_worker
from edge.gateway import run_gateway
from firmware_sim import SimulatorSet
from gridalarm.brokers import Mosquitto
from replay.record import Recorder as WireRecorder
from replay.record import RecordOptions
from rigs.cloud import REGISTRY, cloud_config
from rigs.gateway import rig_sim_config, sequenced, write_gateway_config
from tests.support import Recorder, until

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def pipeline(
    broker: Mosquitto, tmp_path: Path
) -> AsyncIterator[tuple[SimulatorSet, Cloud, Recorder]]:
    recorder = Recorder(broker.port, "ga/v1/gw-t/#", client_id="pipeline-watch")
    async with (
        SimulatorSet.from_config(rig_sim_config(), speed=10.0) as sims,
        cloud_worker(cloud_config(broker, tmp_path / "cloud")) as cloud,
    ):
        gw = asyncio.create_task(run_gateway(write_gateway_config(sims, broker, tmp_path / "gw")))
        try:
            await until(
                lambda: len({m["dev"] for m in sequenced(recorder.snapshot())}) >= 5,
                30,
                "all devices",
            )
            yield sims, cloud, recorder
        finally:
            gw.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gw
            recorder.close()


def transitions(cloud: Cloud) -> list[tuple[str, str, str]]:
    return [(e["key"], e["kind"], e["severity"]) for e in list_events(cloud.db)]


def has(cloud: Cloud, key: str, kind: str) -> bool:
    return any(k == key and kd == kind for k, kd, _ in transitions(cloud))


def events_of(recorder: Recorder, dev: str, name: str) -> int:
    return sum(
        1
        for m in sequenced(recorder.snapshot())
        if m["t"] == "event" and m["dev"] == dev and m["event"] == name
    )


async def test_field_events_become_exactly_the_expected_transitions(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """...and a recording of the same run, replayed offline, raises exactly the same alarms."""
    recording = tmp_path / "run.jsonl.gz"
    wire_recorder = WireRecorder(RecordOptions(broker.url, recording, None, REGISTRY))
    recording_task = asyncio.create_task(wire_recorder.run())
    await asyncio.wait_for(wire_recorder.subscribed.wait(), 15)
    async with pipeline(broker, tmp_path) as (sims, cloud, recorder):
        sims.device("smk-0001").trigger("smoke")
        await until(lambda: has(cloud, "smk-0001/smoke-fire", "raise"), 15, "the fire alarm")
        sims.device("smk-0002").trigger("smoke")
        await until(lambda: has(cloud, "smk-0002/smoke-fire", "confirm"), 15, "the fire confirmed")

        sims.device("fl-0001").trigger("rise")  # 0 → 400 mm over 60 simulated s (6 s at speed 10)
        await until(lambda: has(cloud, "fl-0001/flood-level", "upgrade"), 30, "the flood at danger")
        sims.device("fl-0001").trigger("clear")
        await until(lambda: has(cloud, "fl-0001/flood-level", "clear"), 15, "the flood cleared")

        sims.device("mh-0001").trigger("tilt")
        await until(lambda: has(cloud, "mh-0001/manhole-tilt", "raise"), 15, "the tilted cover")

        for n in range(1, 5):
            sims.device("eb-0001").trigger("ebike")
            await until(
                lambda n=n: events_of(recorder, "eb-0001", "ebike_detected") >= n,
                15,
                f"e-bike entry {n}",
            )
        await until(
            lambda: has(cloud, "eb-0001/ebike-repeated", "raise"), 15, "repeated e-bike entries"
        )
        # let the 4th entry's checkpoint land before counting (it must add nothing)
        await until(
            lambda: cloud.ingest.processed >= sum(1 for _ in sequenced(recorder.snapshot())),
            15,
            "the cloud to process everything published",
        )

    got = Counter(transitions(cloud))
    expected = Counter(
        {
            ("smk-0001/smoke-fire", "raise", "critical"): 1,
            ("smk-0002/smoke-fire", "raise", "critical"): 1,
            ("smk-0001/smoke-fire", "confirm", "critical"): 1,
            ("smk-0002/smoke-fire", "confirm", "critical"): 1,
            ("fl-0001/flood-level", "raise", "warning"): 1,
            ("fl-0001/flood-level", "upgrade", "danger"): 1,
            ("fl-0001/flood-level", "clear", "danger"): 1,
            ("mh-0001/manhole-tilt", "raise", "warning"): 1,
            ("eb-0001/ebike-repeated", "raise", "warning"): 1,
        }
    )
    assert got == expected, f"unexpected: {got - expected}, missing: {expected - got}"
    alarms = {a["key"]: a for a in list_alarms(cloud.db)}
    assert alarms["smk-0001/smoke-fire"]["confirmed"] and alarms["smk-0002/smoke-fire"]["confirmed"]
    assert alarms["smk-0001/smoke-fire"]["state"] == "open", (
        "a fire alarm is closed by a person, not the sensor"
    )
    assert alarms["fl-0001/flood-level"]["state"] == "cleared"

    wire_recorder.stop()
    assert await recording_task > 0
    report = tmp_path / "replay.json"
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "gridalarm",
            "replay",
            str(recording),
            "--rules",
            str(tmp_path / "cloud" / "rules"),
            "--report",
            str(report),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    replayed = Counter(
        (t["key"], t["kind"], t["severity"], round(t["ts"], 3))
        for t in json.loads(report.read_text())["transitions"]
    )
    live = Counter(
        (e["key"], e["kind"], e["severity"], round(e["ts"], 3)) for e in list_events(cloud.db)
    )
    assert replayed == live, f"only live: {live - replayed}; only replayed: {replayed - live}"
