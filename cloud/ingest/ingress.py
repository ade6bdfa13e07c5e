"""The cloud's MQTT connection: the only cloud module that owns an ingest client.

paho-mqtt (driven from the asyncio loop) rather than aiomqtt here, on purpose: aiomqtt
acknowledges a QoS 1 message as soon as it is read, so a crash would
lose what was acknowledged but not yet handled. paho 2.x lets us acknowledge *after* the
checkpoint that covers a message is committed. A fixed client id with a persistent session
makes the broker keep everything published while the cloud is down.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud.config import CloudMqtt
from cloud.health import Health
from cloud.ingest.bulk_client import BulkClient

logger = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 86400  # MQTT 5: how long the broker keeps our session while we are away
READ_BURST = 256  # packets read per socket wake-up
CONNACK_TIMEOUT_S = 30.0  # a cluster node may restore a session from its store meanwhile


class Incoming(NamedTuple):  # a tuple: made for every message, cheaper than a dataclass
    mid: int
    qos: int
    topic: str
    payload: bytes
    retain: bool
    arrived: float  # time.monotonic() when paho handed it over


class Ingress:
    """Receives messages into a deque and acknowledges on demand.

    paho runs inside the asyncio loop (its socket registered with add_reader / add_writer,
    keep-alive from run()) rather than in its own thread: one thread, no hand-over
    per message, no GIL ping-pong between a network thread and the rules.
    """

    def __init__(
        self,
        config: CloudMqtt,
        topics: list[str],
        health: Health | None = None,
        *,
        client_id: str | None = None,
        part: str = "ingest",
        may_connect: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """*client_id*: the session's (default: the config's); *part*: its name on /readyz;
        *may_connect*: asked before every (re)connection — False stops trying (a partition
        this worker no longer owns must not take its session back from the new owner)."""
        self._config = config
        self._client_id = client_id or config.client_id
        self._urls = [config.url, *config.failover]
        self._url_index = 0
        self._part = part
        self._may_connect = may_connect
        self._health = health
        self._paused: tuple[BulkClient, Any] | None = None  # reading stopped: queue is full
        self._stopping = False
        self._topics = topics
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: BulkClient | None = None
        self._received = 0
        self.queue: deque[Incoming] = deque()
        self.ready = asyncio.Event()
        self.connected = asyncio.Event()

    def start(self) -> None:
        """Build the client; ``run()`` connects and keeps the connection."""
        self._loop = asyncio.get_running_loop()
        self._client = self._build()
        if self._health is not None:
            self._health.expect(self._part, "not connected to the broker yet")

    async def stop(self) -> None:
        self._stopping = True  # our own disconnect is no fault
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()

    def ack(self, items: Iterable[tuple[int, int]]) -> None:
        """Acknowledge (mid, qos) pairs whose handling is now durable: a batch in one write."""
        client = self._client
        if client is None:
            return
        qos1: list[int] = []
        for mid, qos in items:
            if qos == 1:
                qos1.append(mid)
            elif qos > 1:
                client.ack(mid, qos)
        client.ack_many(qos1)

    @property
    def url(self) -> str:
        """The broker URL in use (or tried next)."""
        return self._urls[self._url_index]

    def add_topics(self, topics: Iterable[str]) -> None:
        """Subscribe to more topics now (if connected) and on every reconnection."""
        new = [t for t in topics if t not in self._topics]
        if not new:
            return
        self._topics = [*self._topics, *new]
        client = self._client
        if client is not None and client.is_connected():
            for topic in new:
                client.subscribe(self._subscription(topic), qos=1)

    async def run(self) -> None:
        """Connect, and reconnect with jittered back-off, until cancelled or stopped (or,
        with *may_connect*, until it says no: then return)."""
        delay = 0.5
        while True:
            client = self._client
            if client is None:  # stop() came first
                return
            if not client.is_connected() and not self.connected.is_set():
                if self._may_connect is not None and not await self._may_connect():
                    return
                try:
                    await self._connect(client)
                    await self._connack()
                    delay = 0.5
                except (OSError, ValueError, TimeoutError) as err:
                    self._mark(False, f"cannot connect to the broker {self.url}: {err}")
                    self._next_url()
                    await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                    delay = min(delay * 2, 10.0)
                    continue
            client.loop_misc()  # keep-alive pings, timeouts
            await asyncio.sleep(1.0)

    async def _connack(self) -> None:
        """Wait for the broker's answer to CONNECT before anything else: a clustered broker
        restoring a session from its replicated store takes seconds, and a second CONNECT
        meanwhile would replace the first and start the restore again."""
        client = self._client
        try:
            async with asyncio.timeout(CONNACK_TIMEOUT_S):
                while not self.connected.is_set():
                    if client is None or client.socket() is None:
                        raise OSError("the broker closed the connection before answering")
                    await asyncio.sleep(0.05)
        except TimeoutError:
            if client is not None:
                client.disconnect()
            raise TimeoutError(f"no CONNACK in {CONNACK_TIMEOUT_S:.0f} s") from None

    def _next_url(self) -> None:
        """Fail over: the next broker of the list (a cluster's other nodes)."""
        self._url_index = (self._url_index + 1) % len(self._urls)

    async def _connect(self, client: mqtt.Client) -> None:
        parts = urlsplit(self.url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        props = None
        if self._config.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = self._config.receive_maximum
            await asyncio.to_thread(
                client.connect,
                host,
                port,
                self._config.keepalive_s,
                clean_start=False,
                properties=props,
            )
        else:
            await asyncio.to_thread(client.connect, host, port, self._config.keepalive_s)

    def _build(self) -> BulkClient:
        cfg = self._config
        v5 = cfg.protocol == "5"
        client = BulkClient(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if cfg.username:
            client.username_pw_set(
                cfg.username, cfg.password.get_secret_value() if cfg.password else None
            )
        if any(urlsplit(url).scheme == "mqtts" for url in self._urls):
            client.tls_set(
                ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                certfile=str(cfg.cert_file) if cfg.cert_file else None,
                keyfile=str(cfg.key_file) if cfg.key_file else None,
            )
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message  # what the fast path leaves to paho (QoS 2...)
        client.on_publish_fast = self._on_publish
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    # -- socket plumbing (connect() runs in a worker thread: hop to the loop) -----------
    def _in_loop(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        assert isinstance(client, BulkClient)  # the one _build() made
        self._in_loop(self._add_reader, client, sock)

    def _add_reader(self, client: BulkClient, sock: Any) -> None:
        assert self._loop is not None
        self._loop.add_reader(sock, self._readable, client)

    def _on_socket_close(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        self._paused = None
        # paho calls this just before closing: take the number now, the socket says -1 after
        fd = sock.fileno()
        if fd >= 0 and self._loop is not None and not self._loop.is_closed():
            self._in_loop(self._forget_fd, fd)

    def _forget_fd(self, fd: int) -> None:
        assert self._loop is not None
        self._loop.remove_reader(fd)
        self._loop.remove_writer(fd)

    def _on_register_write(self, client: mqtt.Client, _u: Any, sock: Any) -> None:
        if self._loop is not None:
            self._in_loop(self._loop.add_writer, sock, client.loop_write)

    def _on_unregister_write(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        if self._loop is not None:
            self._in_loop(self._loop.remove_writer, sock)

    def resume_reading(self) -> None:
        """Ingest drained the queue below the low-water mark: read from the socket again."""
        paused, self._paused = self._paused, None
        if paused is not None and self._loop is not None:
            client, sock = paused
            self._loop.add_reader(sock, self._readable, client)
            self._readable(client)

    def _readable(self, client: BulkClient) -> None:
        # paho reads one packet per loop_read() (the fast path: every plain PUBLISH already
        # read); take a burst per wake-up, stop when one call brought no message (it was an ack
        # / ping reply, or a packet is incomplete) and nothing read waits in the client's
        # buffer: the next bytes must come from the socket
        limit = self._config.max_queued
        for _ in range(READ_BURST):
            room = limit - len(self.queue)
            if room <= 0:
                self._pause(client)
                break
            client.fast_room = room
            before = self._received
            if client.loop_read() != mqtt.MQTT_ERR_SUCCESS:
                break
            if self._received == before and not client.buffered:
                break
        else:
            if client.buffered and self._loop is not None:
                # the socket may stay silent: no reader callback would come for these bytes
                self._loop.call_soon(self._readable, client)
        if self.queue:
            self.ready.set()

    def _pause(self, client: BulkClient) -> None:
        """Back-pressure, not growth: unread packets wait in the client's buffer and the
        socket (TCP flow control) until ``resume_reading()``."""
        sock = client.socket()
        if sock is not None and self._loop is not None and self._paused is None:
            self._loop.remove_reader(sock)
            self._paused = (client, sock)

    # -- callbacks (in the loop thread now) --------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, rc: ReasonCode, _p: Any
    ) -> None:
        if rc.is_failure:
            self._mark(False, f"broker refused {self._client_id}: {rc}")
            return
        if self._topics:  # one SUBSCRIBE: one SUBACK says the session is listening
            client.subscribe([(self._subscription(t), 1) for t in self._topics])
        logger.info(
            "cloud ingress %s: connected to %s (session present: %s)",
            self._client_id,
            self.url,
            flags.session_present,
        )
        self._in_loop(self.connected.set)
        self._in_loop(self._mark, True)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        refused = [str(c) for c in codes if c.is_failure]
        if refused:
            logger.error("cloud ingress %s: subscription refused: %s", self._client_id, refused)
        else:
            logger.info("cloud ingress %s: subscribed (%d topics)", self._client_id, len(codes))

    def _subscription(self, topic: str) -> str:
        group = self._config.shared_group
        return f"$share/{group}/{topic}" if group else topic

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self._in_loop(self.connected.clear)
        if not self._stopping:
            self._in_loop(self._mark, False, f"disconnected from the broker ({rc})")
            self._in_loop(self._next_url)

    def _mark(self, ok: bool, reason: str = "") -> None:
        if self._health is not None:
            self._health.mark(self._part, ok, reason)
        elif not ok:
            logger.warning("cloud ingress %s: %s", self._client_id, reason)

    def _on_publish(self, mid: int, qos: int, topic: str, payload: bytes, retain: bool) -> None:
        self._received += 1
        self.queue.append(Incoming(mid, qos, topic, payload, retain, time.monotonic()))

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._received += 1
        self.queue.append(
            Incoming(
                msg.mid, msg.qos, msg.topic, bytes(msg.payload), bool(msg.retain), time.monotonic()
            )
        )
