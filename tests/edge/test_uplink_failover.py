"""A gateway given every node of a clustered broker fails over when its node dies: the outbox
re-sends what the dead node never acknowledged, and a persistent subscriber on another node
sees every sequence number, in order, none lost. Real 3-node NATS cluster, real gateway parts
(outbox, emitter, uplink, forwarder)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.config import MqttConfig, read_gateway_config
from edge.emitter import Emitter, drop_record
from edge.forwarder import Forwarder
from edge.outbox import Outbox
from edge.uplink import LastWill, Uplink
from rigs.nats import NatsCluster
from tests.support import Recorder, need_service, until
from wire import Quality, decode_sequenced, parse_topic
from wire.yamlconf import ConfigError

GATEWAY = "gw-failover"
COUNT = 600


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    (tmp_path / "nats").mkdir()
    try:
        rig = NatsCluster(tmp_path / "nats")
    except FileNotFoundError as err:  # the rig looks for the binary
        need_service(str(err))
        raise
    with rig:
        yield rig


def seqs(recorder: Recorder) -> list[int]:
    """Sequence numbers in the order they arrived (a QoS 1 redelivery may repeat one)."""
    return [decode_sequenced(parse_topic(t), p).seq for t, p, _ in recorder.snapshot()]


def first_arrivals(numbers: list[int]) -> list[int]:
    seen: set[int] = set()
    return [n for n in numbers if not (n in seen or seen.add(n))]  # type: ignore[func-returns-value]


async def emit(emitter: Emitter, count: int) -> None:
    """A steady stream, as pollers make it: one reading every few milliseconds."""
    for n in range(count):
        emitter.data("smk-1", 1_800_000_000.0 + n, Quality.GOOD, {"n": n})
        await asyncio.sleep(0.005)


async def test_a_gateway_moves_to_another_node_and_nothing_is_lost(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    ports = cluster.mqtt_ports
    # the cloud's persistent session, on the node the gateway will not be on
    recorder = Recorder(ports[2], f"ga/v1/{GATEWAY}/dev/+/data", client_id="failover-cloud")
    config = MqttConfig(urls=[f"mqtt://127.0.0.1:{p}" for p in ports], protocol="3.1.1")
    outbox = Outbox(
        tmp_path / "outbox.sqlite", max_messages=10_000,
        drop_record=lambda s, r: drop_record(GATEWAY, s, r),
    )  # fmt: skip
    uplink = Uplink(
        config, f"gridalarm-edge-{GATEWAY}", will=LastWill(f"ga/v1/{GATEWAY}/status", b"{}"),
        on_connect=lambda: None, subscriptions=[],
    )  # fmt: skip
    forwarder = Forwarder(outbox, uplink, 50)
    emitter = Emitter(GATEWAY, outbox, forwarder.appended)
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(uplink.run(), name="test.uplink"),
                tg.create_task(forwarder.run(), name="test.forwarder"),
                tg.create_task(forwarder.run_acks(), name="test.acks"),
                tg.create_task(emitter.run(), name="test.emitter"),
            ]
            tasks.append(tg.create_task(emit(emitter, COUNT), name="test.pollers"))
            await until(uplink.connected.is_set, 20, "the first connection")
            assert uplink.broker.port == ports[0], "the first URL is tried first"
            await until(lambda: len(seqs(recorder)) >= COUNT // 4, 20, "a quarter delivered")
            await asyncio.to_thread(cluster.kill, 0)  # kill -9 the gateway's node
            await until(
                lambda: uplink.connected.is_set() and uplink.broker.port != ports[0],
                30, "the gateway on another node",
            )  # fmt: skip
            await until(lambda: outbox.depth == 0 and forwarder.acked >= COUNT, 30, "all acked")
            await until(lambda: len(set(seqs(recorder))) >= COUNT, 30, "every seq delivered")
            for task in tasks:
                task.cancel()
    finally:
        recorder.close()
        outbox.close()
    got = seqs(recorder)
    assert set(got) == set(range(1, COUNT + 1)), "none lost"
    assert first_arrivals(got) == list(range(1, COUNT + 1)), "in order"
    assert uplink.generation >= 2


@pytest.mark.parametrize(
    ("mqtt", "error"),
    [
        (
            "  urls:\n    - mqtt://n1:1883\n    - http://n2:1883\n",
            "gw.yaml:5: mqtt.urls[1]: Value error, broker URL 'http://n2:1883': scheme must be",
        ),
        ("  url: mqtt://n1:1883\n  urls: [mqtt://n2:1883]\n", "gw.yaml:2: mqtt: Value error, "),
        ("  urls: []\n", "gw.yaml:3: mqtt.urls: List should have at least 1 item"),
    ],
)
def test_every_broker_url_is_checked_where_it_stands(tmp_path: Path, mqtt: str, error: str) -> None:
    (tmp_path / "gw.yaml").write_text(f"gateway_id: gw-1\nmqtt:\n{mqtt}")
    with pytest.raises(ConfigError) as caught:
        read_gateway_config(tmp_path / "gw.yaml")
    assert str(caught.value).startswith(f"{tmp_path}/{error}")


def test_with_urls_the_first_is_the_url_others_show(tmp_path: Path) -> None:
    (tmp_path / "gw.yaml").write_text(
        "gateway_id: gw-1\nmqtt:\n  urls: [mqtt://n1:1883, mqtts://n2]\n"
    )
    mqtt = read_gateway_config(tmp_path / "gw.yaml")[0].mqtt
    assert mqtt.url == "mqtt://n1:1883"
    assert mqtt.brokers == ["mqtt://n1:1883", "mqtts://n2"]
