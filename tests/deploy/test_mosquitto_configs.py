"""The shipped Mosquitto configs, run by a real broker.

dev.conf: anonymous QoS 1 works, and a persistent subscriber that is away gets back every one
of 3,000 messages (beyond Mosquitto's default queue of 1,000) even across a broker restart;
the same scenario without our max_queued_messages line loses messages (the control).

production.conf + acl: mutual TLS with certificates from tests/deploy/pki.py; a gateway
writes only its own subtree, reads only its own commands; the cloud reads everything and
writes only commands; a client without a certificate (or with a foreign one) is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.deploy.conftest import StartBroker
from tests.deploy.mosquitto_harness import (
    Client,
    Tls,
    free_port,
    render_dev,
    tls_client,
)
from tests.deploy.pki import PkiPaths, make_test_pki
from wire.messages import Command, CommandReply, DataMessage, EventMessage, decode_sequenced, encode
from wire.topics import command_topic, data_topic, event_topic, reply_topic, status_topic

pytestmark = pytest.mark.integration

BURST = 3000  # three times Mosquitto's default max_queued_messages
DATA_FILTER = "ga/v1/+/dev/+/data"


def _data(gw: str, dev: str, seq: int) -> bytes:
    return encode(
        DataMessage(gw=gw, dev=dev, seq=seq, ts=1_700_000_000.0 + seq, values={"t": 21.5})
    )


# --- dev.conf ---------------------------------------------------------------------------


def _publish_burst(port: int, clients: list[Client]) -> None:
    publisher = Client("gw-01")
    clients.append(publisher)
    publisher.connect(port)
    mids = [
        publisher.publish(data_topic("gw-01", "meter-1"), _data("gw-01", "meter-1", s))
        for s in range(1, BURST + 1)
    ]
    publisher.wait_acked(mids)
    publisher.disconnect()


def _away_subscriber(port: int, clients: list[Client]) -> Client:
    """A persistent-session subscriber that subscribes and then goes offline."""
    sub = Client("cloud-dev", clean=False)
    clients.append(sub)
    sub.connect(port)
    sub.subscribe(DATA_FILTER, qos=1)
    sub.disconnect()
    return sub


def test_dev_conf_keeps_3000_queued_messages_for_offline_subscriber_across_restart(
    tmp_path: Path, start_broker: StartBroker, clients: list[Client]
) -> None:
    port = free_port()
    config = render_dev(tmp_path, port)
    broker = start_broker(config, port)
    _away_subscriber(port, clients)  # anonymous QoS 1 subscribe: allow_anonymous works

    _publish_burst(port, clients)  # anonymous QoS 1 publish, every PUBACK received

    broker.stop()  # clean shutdown writes mosquitto.db; a restart must bring the queue back
    start_broker(config, port)

    back = Client("cloud-dev", clean=False)
    clients.append(back)
    back.connect(port)
    assert back.session_present, "the persistent session did not survive the restart"
    back.wait_received(lambda got: len(got) >= BURST, f"{BURST} queued messages")
    seqs = sorted(decode_sequenced(m.topic, m.payload).seq for m in back.received)
    assert seqs == list(range(1, BURST + 1))


def test_control_default_queue_limit_drops_messages(
    tmp_path: Path, start_broker: StartBroker, clients: list[Client]
) -> None:
    """Without our max_queued_messages line, the same burst overflows: the test above has teeth."""
    port = free_port()
    config = render_dev(tmp_path, port, set_={"sys_interval": "1"}, drop=("max_queued_messages",))
    start_broker(config, port)
    _away_subscriber(port, clients)
    _publish_burst(port, clients)

    watcher = Client("watcher")
    clients.append(watcher)
    watcher.connect(port)
    watcher.subscribe("$SYS/broker/publish/messages/dropped", qos=0)
    watcher.wait_received(
        lambda got: any(int(m.payload) >= BURST - 1000 for m in got),
        "the broker to report the dropped overflow",
    )


# --- production.conf --------------------------------------------------------------------


def test_gateway_writes_only_its_own_subtree(
    production: int, pki: PkiPaths, clients: list[Client]
) -> None:
    cloud = tls_client(pki, "cloud")
    clients.append(cloud)
    cloud.connect(production)
    cloud.subscribe("ga/v1/#", qos=1)

    # gw-01's certificate; the username it sends is ignored (the CN is the identity)
    gw = tls_client(pki, "gw-01", protocol=mqtt.MQTTv5, username="gw-02")
    clients.append(gw)
    gw.connect(production)
    cmd = encode(Command(id="c1", cmd="ping", ts=1_700_000_000.0))
    forbidden = [
        gw.publish(data_topic("gw-02", "x"), _data("gw-02", "x", 1)),
        gw.publish(event_topic("gw-02", "x"), b"{}"),
        gw.publish(status_topic("gw-02"), b'{"state":"offline"}'),
        gw.publish(command_topic("gw-01", "c1"), cmd),  # may not forge commands to itself
        gw.publish("ga/v1/gw-01/anything-else", b"{}"),
    ]
    allowed_topic = data_topic("gw-01", "x")
    allowed = gw.publish(allowed_topic, _data("gw-01", "x", 1))
    gw.wait_acked([*forbidden, allowed])

    # The same connection published in order to one subscription: once the allowed message
    # has arrived, anything forbidden that got through would have arrived before it.
    cloud.wait_received(lambda got: any(m.topic == allowed_topic for m in got), allowed_topic)
    assert cloud.topics() == [allowed_topic]
    assert not gw.acks[allowed].is_failure
    for mid in forbidden:  # MQTT 5 tells the publisher: 0x87 not authorized
        assert gw.acks[mid].value == 0x87, gw.acks[mid]


def test_commands_reach_only_their_gateway_and_replies_reach_the_cloud(
    production: int, pki: PkiPaths, clients: list[Client]
) -> None:
    # one connection per certificate (its CN is its client id): the cloud reads and commands
    cloud = tls_client(pki, "cloud")
    gw1 = tls_client(pki, "gw-01")
    clients.extend([cloud, gw1])
    for c in (cloud, gw1):
        c.connect(production)
    cloud.subscribe("ga/v1/#", qos=1)
    gw1.subscribe("ga/v1/#", qos=1)  # asks for everything; the ACL lets through its commands only

    def command(gw: str, cid: str) -> int:
        return cloud.publish(command_topic(gw, cid), encode(Command(id=cid, cmd="ping", ts=1.0)))

    forged = cloud.publish(data_topic("gw-01", "x"), _data("gw-01", "x", 7))  # cloud != gateway
    other, own = command("gw-02", "c2"), command("gw-01", "c1")
    cloud.wait_acked([forged, other, own])

    gw1.wait_received(lambda got: any(m.topic.endswith("/c1") for m in got), "its command")
    assert gw1.topics() == [command_topic("gw-01", "c1")]

    reply = encode(CommandReply(gw="gw-01", id="c1", ok=True, ts=2.0, result={"pong": True}))
    gw1.wait_acked([gw1.publish(reply_topic("gw-01", "c1"), reply)])
    cloud.wait_received(lambda got: any(m.topic.endswith("/reply") for m in got), "the reply")
    # the cloud sees both commands (it reads ga/v1/#) and the reply, never the forged data
    assert cloud.topics() == [
        command_topic("gw-02", "c2"),
        command_topic("gw-01", "c1"),
        reply_topic("gw-01", "c1"),
    ]
    assert json.loads(cloud.received[-1].payload)["result"] == {"pong": True}


def test_gateway_event_and_birth_status_are_accepted(
    production: int, pki: PkiPaths, clients: list[Client]
) -> None:
    cloud = tls_client(pki, "cloud")
    clients.append(cloud)
    cloud.connect(production)
    cloud.subscribe("ga/v1/+/#", qos=1)
    gw = tls_client(pki, "gw-02")
    clients.append(gw)
    gw.paho.will_set(status_topic("gw-02"), b'{"gw":"gw-02","state":"offline","ts":1.0}', 1, True)
    gw.connect(production)
    event = encode(EventMessage(gw="gw-02", dev="smoke-3", seq=1, ts=1.0, event="test_button"))
    gw.wait_acked(
        [
            gw.publish(
                status_topic("gw-02"), b'{"gw":"gw-02","state":"online","ts":1.0}', retain=True
            ),
            gw.publish(event_topic("gw-02", "smoke-3"), event),
        ]
    )
    cloud.wait_received(lambda got: len(got) >= 2, "status and event")
    assert cloud.topics() == [status_topic("gw-02"), event_topic("gw-02", "smoke-3")]


@pytest.mark.parametrize("credential", ["none", "foreign-ca"])
def test_client_without_a_valid_certificate_is_refused(
    production: int, pki: PkiPaths, tmp_path: Path, clients: list[Client], credential: str
) -> None:
    if credential == "none":
        tls = Tls(pki.ca_cert)
    else:
        foreign = make_test_pki(tmp_path / "foreign", ["gw-01"])
        tls = Tls(pki.ca_cert, foreign.clients["gw-01"].cert, foreign.clients["gw-01"].key)
    intruder = Client("gw-01", tls=tls)
    clients.append(intruder)
    assert not intruder.try_connect(production), "the broker accepted a client it must refuse"
    assert intruder.connack is None or intruder.connack.is_failure
