"""The demo's fleet speaks the wire contract: numbered per gateway, birth and will, catch-up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gridalarm.brokers import Mosquitto
from gridalarm.fleet import LiveFleet, build_fleet
from rules.devices import DeviceInfo
from tests.support import Recorder, until
from wire import DataMessage, decode_sequenced, decode_status, parse_topic
from wire.topics import TopicKind


def district(heartbeat_s: float = 300.0) -> list[DeviceInfo]:
    kinds = ("smoke", "ebike", "manhole", "flood")
    return [
        DeviceInfo(f"dev-{n:02d}", f"gw-{n % 3}", kinds[n % 4], "g", "b", "c", heartbeat_s)
        for n in range(12)
    ]


def test_the_first_poll_reports_every_device_numbered_per_gateway_from_where_it_was() -> None:
    fleet = build_fleet(district(), {"gw-1": 41}, 1_800_000_000.0)
    assert [g.id for g in fleet] == ["gw-0", "gw-1", "gw-2"]
    for gw in fleet:
        first = [decode_sequenced(t, p) for t, p in gw.poll(1_800_000_000.0)]
        data = [m for m in first if isinstance(m, DataMessage) and m.values]
        assert len(data) == len(first)
        assert {m.dev for m in data} == {d.info.device for d in gw.devices}
        start = 42 if gw.id == "gw-1" else 1
        assert [m.seq for m in data] == list(range(start, start + len(data)))
        quiet = gw.poll(1_800_000_060.0)  # within the heartbeat, nothing moved past a deadband
        assert len(quiet) < len(first)


async def test_a_gateway_that_loses_its_uplink_says_so_and_catches_up_in_order(
    broker: Mosquitto, tmp_path: Path
) -> None:
    recorder = Recorder(broker.port, "ga/v1/#", client_id="fleet-test")
    # a heartbeat shorter than the poll: every poll reports, the outage has a backlog
    fleet = LiveFleet(district(0.1), "127.0.0.1", broker.port, tmp_path / "fleet.json", poll_s=0.2)
    task = asyncio.create_task(fleet.run(), name="test.fleet")
    try:
        await until(lambda: len(messages(recorder, "gw-0")) >= 4, 10, "gw-0's first polls")
        fleet.cut_uplink("gw-0", 1.0)
        cut_at = time.time()
        await until(lambda: "offline" in states(recorder, "gw-0"), 5, "gw-0 offline")
        await asyncio.wait_for(fleet.gateways["gw-0"].caught_up.wait(), 10)
        await until(lambda: states(recorder, "gw-0")[-1:] == ["online"], 5, "gw-0 online")
        seqs = [m.seq for m in messages(recorder, "gw-0")]
        late = [m for m in messages(recorder, "gw-0") if cut_at < m.ts < cut_at + 0.9]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        recorder.close()
    assert states(recorder, "gw-0")[:3] == ["online", "offline", "online"]
    assert seqs == list(range(1, len(seqs) + 1)), "nothing lost, nothing doubled, in order"
    assert late, "what was polled during the outage arrived afterwards with its own time"
    saved = json.loads((tmp_path / "fleet.json").read_text())
    assert saved["gw-0"] >= seqs[-1]


def messages(recorder: Recorder, gateway: str) -> list[DataMessage]:
    out = []
    for topic, payload, _ in recorder.snapshot():
        t = parse_topic(topic)
        if t.gateway == gateway and t.kind is TopicKind.DATA:
            msg = decode_sequenced(t, payload)
            assert isinstance(msg, DataMessage)
            out.append(msg)
    return out


def states(recorder: Recorder, gateway: str) -> list[str]:
    return [
        decode_status(topic, payload).state
        for topic, payload, _ in recorder.snapshot()
        if parse_topic(topic).kind is TopicKind.STATUS and parse_topic(topic).gateway == gateway
    ]


async def test_a_connection_the_broker_drops_is_reopened_and_nothing_is_lost(
    broker: Mosquitto, tmp_path: Path
) -> None:
    recorder = Recorder(broker.port, "ga/v1/#", client_id="fleet-drop-test")
    fleet = LiveFleet(district(0.1), "127.0.0.1", broker.port, tmp_path / "fleet.json", poll_s=0.2)
    task = asyncio.create_task(fleet.run(), name="test.fleet")
    try:
        await until(lambda: len(messages(recorder, "gw-0")) >= 4, 10, "gw-0's first polls")
        before = len(messages(recorder, "gw-0"))
        # another client with gw-0's client id: the broker closes gw-0's connection
        thief = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gridalarm-fleet-gw-0")
        thief.connect("127.0.0.1", broker.port, 10)
        thief.loop_start()
        await until(thief.is_connected, 5, "the takeover")
        thief.disconnect()
        thief.loop_stop()
        await until(lambda: len(messages(recorder, "gw-0")) >= before + 20, 20, "gw-0 again")
        assert not task.done(), "a dropped fleet gateway must not end the fleet"
        seqs = sorted({m.seq for m in messages(recorder, "gw-0")})
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        recorder.close()
    assert seqs == list(range(1, seqs[-1] + 1)), "every sequence arrived (QoS 1 may repeat one)"


async def test_the_fleet_stops_when_cancelled_whatever_it_was_doing(
    broker: Mosquitto, tmp_path: Path
) -> None:
    # a cancellation arriving as a publish is acknowledged must not be lost (3.11's wait_for
    # inside aiomqtt drops it): cancelled at many points, the fleet ends every time
    busy = [
        DeviceInfo(f"dev-{n:03d}", f"gw-{n % 20}", "flood", "g", "b", "c", 0.01) for n in range(200)
    ]
    for attempt in range(15):
        fleet = LiveFleet(busy, "127.0.0.1", broker.port, tmp_path / "fleet.json", poll_s=0.01)
        task = asyncio.create_task(fleet.run(), name=f"test.fleet.{attempt}")
        enough = 100 + 37 * attempt  # a different moment each time
        await until(lambda f=fleet, n=enough: f.published > n, 10, "publishing")  # type: ignore[misc]
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        assert done, f"attempt {attempt}: the fleet kept running after its cancellation"
