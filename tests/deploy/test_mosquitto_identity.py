"""The shipped Mosquitto configs hold identities and sizes, run by a real broker.

production.conf: a client id is its certificate's CN, so a gateway certificate claiming the
cloud's client id neither disconnects the cloud nor takes over (and empties) its persistent
session. Both configs: the largest payload the wire contract accepts gets through on the
longest topic, and a packet beyond max_packet_size is refused: the broker drops its sender.
"""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.deploy.conftest import StartBroker
from tests.deploy.mosquitto_harness import (
    Client,
    free_port,
    render_dev,
    render_production,
    tls_client,
)
from tests.deploy.pki import PkiPaths, make_test_pki
from wire.messages import MAX_PAYLOAD_BYTES, DataMessage, encode
from wire.topics import data_topic, event_topic

pytestmark = pytest.mark.integration

CLOUD_SESSION = "gridalarm-cloud"  # the client id a cloud worker asks for (README, cloud.yaml)


def _data(gw: str, seq: int) -> bytes:
    return encode(DataMessage(gw=gw, dev="d", seq=seq, ts=1_700_000_000.0, values={"t": 1.0}))


@pytest.mark.parametrize("claimed", [CLOUD_SESSION, "cloud"])
@pytest.mark.parametrize("clean", [False, True])
def test_a_gateway_certificate_cannot_take_the_cloud_session(
    production: int, pki: PkiPaths, clients: list[Client], claimed: str, clean: bool
) -> None:
    cloud = tls_client(pki, "cloud", CLOUD_SESSION, clean=False)
    clients.append(cloud)
    cloud.connect(production)
    cloud.subscribe("ga/v1/#", qos=1)
    cloud.disconnect()  # away: the broker queues for its persistent session

    gw2 = tls_client(pki, "gw-02")
    clients.append(gw2)
    gw2.connect(production)
    gw2.wait_acked([gw2.publish(data_topic("gw-02", "d"), _data("gw-02", 1))])

    intruder = tls_client(pki, "gw-01", claimed, clean=clean)
    clients.append(intruder)
    intruder.connect(production)  # its certificate is valid: it gets in, as gw-01
    assert not intruder.session_present, "the intruder was handed the cloud's session"
    intruder.subscribe("ga/v1/#", qos=1)

    back = tls_client(pki, "cloud", CLOUD_SESSION, clean=False)
    clients.append(back)
    back.connect(production)
    assert back.session_present, "the cloud's persistent session is gone"
    back.wait_received(lambda got: len(got) >= 1, "the message queued while the cloud was away")
    assert back.topics() == [data_topic("gw-02", "d")]

    # Both connected at once: a live message reaches the cloud, the intruder still sees nothing
    # of gw-02, and neither connection pushed the other off.
    gw2.wait_acked([gw2.publish(data_topic("gw-02", "d"), _data("gw-02", 2))])
    back.wait_received(lambda got: len(got) >= 2, "a live message")
    assert intruder.topics() == []
    assert back.connected
    assert intruder.connected
    assert back.disconnects == 0


@pytest.mark.parametrize("config_name", ["dev", "production"])
def test_payloads_beyond_the_wire_limit_are_refused_by_the_broker(
    tmp_path: Path, start_broker: StartBroker, clients: list[Client], config_name: str
) -> None:
    gw = "g" * 64  # the longest id the contract allows makes the longest topic
    pki = make_test_pki(tmp_path / "pki", [gw])
    if config_name == "dev":
        port = free_port()
        config = render_dev(tmp_path, port)
        sender = Client(gw, protocol=mqtt.MQTTv5)
        reader = Client("cloud")
    else:
        config, port = render_production(tmp_path, pki)
        sender = tls_client(pki, gw, protocol=mqtt.MQTTv5)
        reader = tls_client(pki, "cloud")
    clients.extend([sender, reader])
    start_broker(config, port)
    reader.connect(port)
    reader.subscribe("ga/v1/#", qos=1)
    sender.connect(port)

    topic = event_topic(gw, "d" * 64)
    largest = sender.publish(topic, b"x" * MAX_PAYLOAD_BYTES)
    sender.wait_acked([largest])
    assert not sender.acks[largest].is_failure
    reader.wait_received(lambda got: len(got) >= 1, "the largest legitimate message")

    oversized = b"z" * (MAX_PAYLOAD_BYTES + 2048)  # beyond max_packet_size
    sender.publish(topic, oversized)
    sender.wait_disconnected("the broker to drop a client sending an oversized packet")
    # the reader (the cloud) commands the gateway: its own message marks the end of the stream
    reader.wait_acked([reader.publish(f"ga/v1/{gw}/cmd/end", b"end")])
    reader.wait_received(lambda got: any(m.payload == b"end" for m in got), "the end marker")
    assert [len(m.payload) for m in reader.received] == [MAX_PAYLOAD_BYTES, 3]
