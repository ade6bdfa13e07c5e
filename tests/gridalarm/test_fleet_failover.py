"""The load fleet, given every node of a clustered broker, fails over when a node dies: the
gateways on it move to the next node and send what they polled meanwhile; a persistent
subscriber on another node sees every gateway's sequence, in order, none lost. Real 3-node
NATS cluster."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from gridalarm.fleet import LiveFleet
from rigs.nats import NatsCluster
from rules.devices import DeviceInfo
from tests.edge.test_uplink_failover import cluster, first_arrivals
from tests.support import Recorder, until
from wire import decode_sequenced, parse_topic

__all__ = ["cluster"]  # the NATS cluster fixture, shared with the edge's failover test


def district() -> list[DeviceInfo]:
    # a heartbeat shorter than the poll: every poll reports every device
    kinds = ("smoke", "ebike", "manhole", "flood")
    return [
        DeviceInfo(f"dev-{n:02d}", f"gw-{n % 3}", kinds[n % 4], "g", "b", "c", 0.1)
        for n in range(12)
    ]


def seqs(recorder: Recorder, gateway: str) -> list[int]:
    out = []
    for topic, payload, _ in recorder.snapshot():
        t = parse_topic(topic)
        if t.gateway == gateway:
            out.append(decode_sequenced(t, payload).seq)
    return out


async def test_the_fleet_moves_off_a_dead_node_and_nothing_is_lost(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    ports = cluster.mqtt_ports
    recorder = Recorder(ports[2], "ga/v1/+/dev/#", client_id="fleet-failover-cloud")
    fleet = LiveFleet(
        district(), "127.0.0.1", ports[0], tmp_path / "fleet.json", poll_s=0.2,
        cluster=[("127.0.0.1", ports[1]), ("127.0.0.1", ports[2])],
    )  # fmt: skip
    assert fleet.broker == {"gw-0": 0, "gw-1": 1, "gw-2": 2}, "spread over the nodes"
    run = asyncio.create_task(fleet.run(until=time.time() + 8), name="test.fleet")
    try:
        await until(lambda: len(seqs(recorder, "gw-0")) >= 10, 20, "gw-0 publishing")
        await asyncio.to_thread(cluster.kill, 0)  # kill -9 gw-0's node
        await until(lambda: fleet.broker["gw-0"] == 1, 10, "gw-0 moving to the next node")
        await asyncio.wait_for(run, 40)  # the run ends by itself, all sent
        last = {g.id: g.seq for g in fleet.gateways.values()}
        for gw, n in last.items():
            await until(lambda g=gw, n=n: len(set(seqs(recorder, g))) >= n, 20, f"all of {gw}")  # type: ignore[misc]
    finally:
        run.cancel()
        recorder.close()
    for gw, n in last.items():
        assert first_arrivals(seqs(recorder, gw)) == list(range(1, n + 1)), gw
