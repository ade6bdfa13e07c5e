"""The ingress's bulk reads and batched acknowledgements, against a real Mosquitto.

Each test pre-loads the ingress's persistent session while it is offline, so the broker sends
a backlog: many packets per TCP read, large ones split over several, packets still buffered
when a read burst ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from cloud.config import CloudMqtt
from cloud.ingest import ingress as ingress_module
from cloud.ingest.bulk_client import BulkClient
from cloud.ingest.ingress import Incoming, Ingress
from gridalarm.brokers import Mosquitto
from tests.deploy.mosquitto_harness import Broker, Client, render_production, tls_client
from tests.deploy.pki import PkiPaths, make_test_pki
from tests.support import until
from wire.topics import data_topic

pytestmark = pytest.mark.integration

GATEWAY = "gw-01"
FILTER = "ga/v1/+/dev/+/data"
BIG = 60_000  # bytes: more than a TLS record, most of one 64 KiB read

Item = tuple[str, bytes]


def backlog(n: int, big_every: int = 0) -> list[Item]:
    """*n* numbered messages over a few devices; every *big_every*-th one BIG bytes long."""
    out = []
    for i in range(n):
        size = BIG if big_every and i % big_every == big_every - 1 else 40
        out.append((data_topic(GATEWAY, f"dev-{i % 7}"), f"{i:06d}".encode().ljust(size, b".")))
    return out


def preload(port: int, session: Client, publisher: Client, items: list[Item]) -> None:
    """Create *session* (persistent, subscribed), leave it, then publish *items* for it."""
    session.connect(port)
    session.subscribe(FILTER)
    session.disconnect()
    publisher.connect(port)
    publisher.wait_acked([publisher.publish(topic, payload) for topic, payload in items])
    publisher.disconnect()


@contextlib.asynccontextmanager
async def running(config: CloudMqtt, fast: bool = True) -> AsyncIterator[Ingress]:
    """An ingress connected (and reconnecting) until the block ends; then a clean disconnect.
    *fast* False: every PUBLISH through paho's own handler (the bulk client's fast path off)."""
    ingress = Ingress(config, [FILTER])
    ingress.start()
    client = ingress._client
    assert client is not None and client.on_publish_fast is not None
    if not fast:
        client.on_publish_fast = None
    task = asyncio.create_task(ingress.run(), name="test.ingress")
    try:
        await until(lambda: ingress.connected.is_set() or task.done(), 20, "the connection")
        assert not task.done(), task.exception()
        yield ingress
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ingress.stop()  # the DISCONNECT goes out after the acknowledgements queued
        await until(lambda: not ingress.connected.is_set(), 10, "the disconnection")


async def take(ingress: Ingress, n: int, what: str, timeout_s: float = 30) -> list[Incoming]:
    """Handle what the ingress queued, as the ingest does, until *n* messages came."""
    got: list[Incoming] = []

    def enough() -> bool:
        while ingress.queue:
            got.append(ingress.queue.popleft())
        ingress.resume_reading()
        return len(got) >= n

    await until(enough, timeout_s, what, report=lambda: f"{len(got)} of {n} messages")
    return got


def payloads(items: list[Incoming]) -> list[bytes]:
    return [m.payload for m in items]


@pytest.fixture
def plain(broker: Mosquitto) -> Callable[[str], CloudMqtt]:
    return lambda client_id: CloudMqtt(url=broker.url, client_id=client_id)


@pytest.fixture
def socket_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of what each recv() on the ingress's socket returned (paho's own recv, counted)."""
    sizes: list[int] = []
    recv = mqtt.Client._sock_recv

    def counted(client: mqtt.Client, bufsize: int) -> bytes:
        data = recv(client, bufsize)
        if isinstance(client, BulkClient):  # not the test's publishers
            sizes.append(len(data))
        return data

    monkeypatch.setattr(mqtt.Client, "_sock_recv", counted)
    return sizes


async def test_many_messages_per_read_arrive_all_in_order(
    broker: Mosquitto, plain: Callable[[str], CloudMqtt], socket_reads: list[int]
) -> None:
    items = backlog(3000)
    preload(broker.port, Client("cloud-many", clean=False), Client("pub-many"), items)
    async with running(plain("cloud-many")) as ingress:
        got = await take(ingress, len(items), "the backlog")
    assert payloads(got) == [p for _, p in items]
    assert [m.topic for m in got] == [t for t, _ in items]
    assert len(socket_reads) < len(items) / 10, f"{len(socket_reads)} reads"


async def test_a_message_split_over_reads_arrives_whole(
    broker: Mosquitto, plain: Callable[[str], CloudMqtt], socket_reads: list[int]
) -> None:
    items = backlog(400, big_every=40)
    preload(broker.port, Client("cloud-big", clean=False), Client("pub-big"), items)
    async with running(plain("cloud-big")) as ingress:
        got = await take(ingress, len(items), "the backlog")
    assert payloads(got) == [p for _, p in items]
    assert sum(socket_reads) > BIG * 10  # the big ones did arrive, in several reads


@pytest.mark.parametrize("burst", [1, 3])
async def test_a_burst_ending_with_bytes_buffered_delivers_them_without_more_traffic(
    broker: Mosquitto,
    plain: Callable[[str], CloudMqtt],
    monkeypatch: pytest.MonkeyPatch,
    burst: int,
) -> None:
    """The socket has nothing new to say (keep-alive is 30 s away): only the ingress itself
    can come back for the packets its last read left in the buffer."""
    monkeypatch.setattr(ingress_module, "READ_BURST", burst)
    items = backlog(500)
    preload(broker.port, Client("cloud-burst", clean=False), Client("pub-burst"), items)
    async with running(plain("cloud-burst")) as ingress:
        got = await take(ingress, len(items), "the buffered packets", timeout_s=10)
    assert payloads(got) == [p for _, p in items]


def varint(n: int) -> bytes:
    """MQTT's variable byte integer: 7 bits a byte, low first."""
    out = bytearray()
    while True:
        out.append((n & 127) | (128 if n > 127 else 0))
        n >>= 7
        if not n:
            return bytes(out)


def packet(command: int, body: bytes) -> bytes:
    """An MQTT packet: fixed header byte, remaining length, body."""
    return bytes([command]) + varint(len(body)) + body


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    command = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 127) << shift
        shift += 7
        if byte < 128:
            return command, await reader.readexactly(length)


async def test_messages_behind_an_ack_in_the_same_read_are_not_left_waiting() -> None:
    """SUBACK and three messages in one TCP segment, then silence. A stand-in broker: a real
    one cannot be told where to put its bytes. The SUBACK brings no message, yet reading must
    go on while the buffer holds more."""
    sent = [f"m{i}".encode() for i in range(3)]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)  # CONNECT
        writer.write(packet(0x20, b"\x00\x00"))  # CONNACK: accepted, no session
        _, subscribe = await read_packet(reader)
        topic = data_topic(GATEWAY, "dev-0").encode()
        publishes = [
            packet(0x32, len(topic).to_bytes(2, "big") + topic + mid.to_bytes(2, "big") + body)
            for mid, body in enumerate(sent, start=1)
        ]
        writer.write(b"".join([packet(0x90, subscribe[:2] + b"\x01"), *publishes]))
        await reader.read()  # silence until the client leaves
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        config = CloudMqtt(url=f"mqtt://127.0.0.1:{port}", client_id="c", protocol="3.1.1")
        async with running(config) as ingress:
            got = await take(ingress, len(sent), "the messages behind the SUBACK", timeout_s=10)
        assert payloads(got) == sent
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_a_batch_of_acks_reaches_the_broker(
    broker: Mosquitto, protocol: str, socket_reads: list[int]
) -> None:
    config = CloudMqtt(url=broker.url, client_id=f"cloud-ack-{protocol}", protocol=protocol)
    items = backlog(2000)
    preload(broker.port, Client(config.client_id, clean=False), Client("pub-ack"), items)
    async with running(config) as ingress:
        got = await take(ingress, len(items), "the backlog")
        ingress.ack((m.mid, m.qos) for m in got)
    marker = Client("pub-marker").connect(broker.port)
    marker.wait_acked([marker.publish(data_topic(GATEWAY, "dev-0"), b"marker")])
    marker.disconnect()
    # the broker sends what was never acknowledged before what was queued since
    async with running(config) as ingress:
        again = await take(ingress, 1, "the marker")
        assert payloads(again) == [b"marker"]
        ingress.ack((m.mid, m.qos) for m in again)


async def test_a_connection_killed_with_bytes_buffered_reconnects_and_gets_them_again(
    broker: Mosquitto,
) -> None:
    config = CloudMqtt(url=broker.url, client_id="cloud-kill", max_queued=1000)
    items = backlog(4000)
    preload(broker.port, Client(config.client_id, clean=False), Client("pub-kill"), items)
    async with running(config) as ingress:
        # the queue fills up: reading stops (back-pressure) with packets left in the buffer
        await until(lambda: len(ingress.queue) >= config.max_queued, 20, "a full queue")
        client = ingress._client  # the premise of the test: bytes read, not yet made messages
        assert client is not None and client.buffered
        before = list(ingress.queue)
        ingress.queue.clear()
        broker.stop()  # kills the connection; the broker keeps the session
        broker.start()
        got = await take(ingress, len(items), "the backlog after the reconnection", timeout_s=60)
        ingress.ack((m.mid, m.qos) for m in got)
    assert {p for _, p in items} <= set(payloads(before + got))
    again = set(payloads(got))
    assert all(p in again for p in payloads(before)), "unacknowledged messages not redelivered"


@pytest.fixture
def pki(tmp_path: Path) -> PkiPaths:
    return make_test_pki(tmp_path / "pki", [GATEWAY])  # clients gw-01 and cloud


@pytest.fixture
def tls_port(tmp_path: Path, pki: PkiPaths) -> Iterator[int]:
    config, port = render_production(tmp_path, pki)  # mutual TLS, the shipped ACL
    broker = Broker(config, port, tmp_path / "mosquitto.log").start()
    try:
        yield port
    finally:
        broker.stop()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_over_tls_small_and_split_messages_arrive_in_order(
    pki: PkiPaths, tls_port: int, protocol: str
) -> None:
    items = backlog(600, big_every=50)
    session = tls_client(pki, "cloud", clean=False)  # the broker names clients by certificate
    preload(tls_port, session, tls_client(pki, GATEWAY), items)
    pair = pki.clients["cloud"]
    config = CloudMqtt(
        url=f"mqtts://localhost:{tls_port}",
        client_id="cloud",
        protocol=protocol,
        ca_file=pki.ca_cert,
        cert_file=pair.cert,
        key_file=pair.key,
    )
    started = time.monotonic()
    async with running(config) as ingress:
        got = await take(ingress, len(items), "the backlog over TLS")
        ingress.ack((m.mid, m.qos) for m in got)
    assert payloads(got) == [p for _, p in items]
    assert all(m.arrived >= started for m in got)


def publish(v5: bool, topic: str, body: bytes, mid: int = 0, retain: bool = False,
            props: bytes = b"") -> bytes:  # fmt: skip
    """A PUBLISH packet: QoS 1 when *mid*, else QoS 0; MQTT 5 with *props* (raw)."""
    name = topic.encode()
    head = len(name).to_bytes(2, "big") + name + (mid.to_bytes(2, "big") if mid else b"")
    if v5:
        head += varint(len(props)) + props
    return packet(0x30 | (2 if mid else 0) | int(retain), head + body)


def varied(v5: bool) -> tuple[bytes, list[tuple[int, int, str, bytes, bool]]]:
    """Publishes of every shape the fast path takes (QoS 0 and 1, retained, empty, long
    payloads, UTF-8 topics, MQTT 5 properties) and what each must come out as."""
    # MQTT 5 properties: message expiry (0x02, 4 bytes), a user property (0x26, two strings),
    # a subscription identifier (0x0B, variable byte integer)
    user = b"\x26" + b"\x00\x01k" + b"\x00\x03v\xc3\xa9"
    props = [b"", b"\x02\x00\x00\x00\x3c", user + b"\x0b" + varint(300)]
    expect = []
    raw = bytearray()
    for i in range(60):
        topic = data_topic(GATEWAY, f"dev-{i % 5}" if i % 7 else "烟感-7")
        body = b"" if i % 11 == 0 else (b"x" * 300 if i % 13 == 0 else f"m{i}".encode())
        mid = (i * 977) % 65535 + 1 if i % 3 else 0
        retain = i % 17 == 0
        raw += publish(v5, topic, body, mid, retain, props[i % 3])
        expect.append((mid, 1 if mid else 0, topic, body, retain))
    return bytes(raw), expect


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "paho"])
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_publishes_come_out_the_same_with_or_without_the_fast_path(
    protocol: str, fast: bool
) -> None:
    """One TCP write of varied publishes: the fast path gives each message exactly as paho's
    own handler does (tested both ways, so a difference fails one side)."""
    v5 = protocol == "5"
    raw, expect = varied(v5)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)  # CONNECT
        writer.write(packet(0x20, b"\x00\x00" + (b"\x00" if v5 else b"")))  # CONNACK
        _, subscribe = await read_packet(reader)
        suback = subscribe[:2] + (b"\x00" if v5 else b"") + b"\x01"
        writer.write(packet(0x90, suback) + raw)
        await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        config = CloudMqtt(url=f"mqtt://127.0.0.1:{port}", client_id="c", protocol=protocol)
        async with running(config, fast) as ingress:
            got = await take(ingress, len(expect), "the publishes", timeout_s=10)
        assert [(m.mid, m.qos, m.topic, m.payload, m.retain) for m in got] == expect
        assert all(type(m.payload) is bytes for m in got)
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("v5", [False, True])
def test_the_fast_path_leaves_what_it_cannot_judge_to_paho(v5: bool) -> None:
    """Other packets, QoS 2, empty or non-UTF-8 topics, lengths that do not add up and
    incomplete packets stay in the buffer, untouched, for paho's reader and handlers."""
    good = publish(v5, "ga/v1/gw/dev/d/data", b"ok", mid=7)
    name = b"ga/v1/gw/dev/d/data"
    bad_topic_len = packet(0x32, (len(name) + 50).to_bytes(2, "big") + name + b"\x00\x01")
    odd = [
        packet(0x90, b"\x00\x01\x01"),  # a SUBACK
        packet(0x34, b"\x00\x01a\x00\x05" + (b"\x00" if v5 else b"") + b"q2"),  # QoS 2
        publish(v5, "", b"empty topic", mid=3),
        packet(0x32, b"\x00\x02\xff\xfe\x00\x09" + (b"\x00" if v5 else b"") + b"latin"),
        bad_topic_len,
        good[:-1],  # incomplete
    ]
    for tail in odd:
        client = BulkClient(
            mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        )
        seen: list[tuple[int, int, str, bytes, bool]] = []

        def deliver(mid: int, qos: int, topic: str, payload: bytes, retain: bool) -> None:
            seen.append((mid, qos, topic, payload, retain))  # noqa: B023 - used at once

        client._rbuf, client._rpos = good + tail, 0
        assert client._publishes(deliver) == 1
        assert seen == [(7, 1, "ga/v1/gw/dev/d/data", b"ok", False)]
        assert client._rbuf[client._rpos :] == tail, tail
