"""The clustered broker tier: a 3-node NATS cluster (deploy/nats) keeps an MQTT QoS 1 session
through the kill -9 of the node its subscriber was on — nothing published is lost."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from rigs.nats import NatsCluster
from tests.support import need_service, wait_until

TOPIC = "ga/v1/gw-7/dev/smk-1/data"
COUNT = 300


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    if shutil.which("nats-server") is None and not Path("/usr/sbin/nats-server").exists():
        need_service("nats-server (apt-get install nats-server)")
    with NatsCluster(tmp_path) as c:
        yield c


class Subscriber:
    """A cloud worker's persistent session (clean_session=False) with a fixed client id."""

    def __init__(self, client_id: str) -> None:
        self.seen: list[int] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
            protocol=mqtt.MQTTv311,
        )  # fmt: skip
        self.client.on_connect = self._connected
        self.client.on_message = self._message

    def _connected(self, client: mqtt.Client, *_a: object) -> None:
        client.subscribe("ga/v1/+/dev/+/data", qos=1)
        self.ready.set()

    def _message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.seen.append(int(msg.payload))

    def connect(self, port: int) -> None:
        self.ready.clear()
        self.client.connect("127.0.0.1", port, 10)
        self.client.loop_start()
        assert self.ready.wait(20), "subscriber did not connect"

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def unique(self) -> set[int]:
        with self.lock:
            return set(self.seen)


def publish(port: int, numbers: range) -> None:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-7", protocol=mqtt.MQTTv311)
    up = threading.Event()
    pub.on_connect = lambda *_a: up.set()
    pub.connect("127.0.0.1", port, 10)
    pub.loop_start()
    try:
        assert up.wait(20), f"publisher could not connect to {port}"
        for n in numbers:
            pub.publish(TOPIC, str(n).encode(), qos=1).wait_for_publish(10)
    finally:
        pub.loop_stop()
        pub.disconnect()


def test_a_session_survives_the_death_of_its_node(cluster: NatsCluster) -> None:
    ports = cluster.mqtt_ports
    sub = Subscriber("gridalarm-cloud-p0")
    sub.connect(ports[0])
    publish(ports[1], range(COUNT // 2))
    wait_until(lambda: len(sub.unique()) == COUNT // 2, 20, "the first half delivered")
    sub.client.loop_stop()  # the worker's node dies under it
    cluster.kill(0)
    publish(ports[2], range(COUNT // 2, COUNT))  # published while nobody listens
    sub.client.reinitialise(client_id="gridalarm-cloud-p0", clean_session=False)
    sub.client.on_connect, sub.client.on_message = sub._connected, sub._message
    sub.connect(ports[1])  # the same session, on another node
    try:
        wait_until(lambda: len(sub.unique()) == COUNT, 30, "every message after the failover")
    finally:
        sub.stop()
    assert sub.unique() == set(range(COUNT))
