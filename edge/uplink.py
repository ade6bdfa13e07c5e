"""The gateway's MQTT connection: the only module on the edge that owns a paho client.

Each connection attempt builds a fresh paho client (so no stale in-flight state from a dead
connection is replayed behind our back: the outbox is the one source of truth and replays
itself). The network loop runs in paho's thread; acknowledgements and commands are handed to
the event loop with ``call_soon_threadsafe``. Reconnects back off with jitter.

With several broker URLs (the nodes of a clustered broker) a failed or lost connection moves
on to the next URL, round robin. Nothing else changes across the switch: the client id stays,
and the outbox re-sends whatever the old node had not acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge.aio import wait_first
from edge.config import MqttConfig, broker_address
from edge.errors import UplinkError

logger = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 15.0
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        try:
            return cls(*broker_address(url))
        except ValueError as err:
            raise UplinkError(str(err)) from err


@dataclass(frozen=True, slots=True)
class LastWill:
    topic: str
    payload: bytes


class Uplink:
    """Connects, re-connects, publishes; reports acks and incoming messages to the loop."""

    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        *,
        will: LastWill,
        on_connect: Callable[[], None],
        subscriptions: list[str],
    ) -> None:
        self._config = config
        self._addresses = [BrokerAddress.parse(url) for url in config.brokers]
        self._next = 0  # index of the broker the next connection attempt goes to
        self._address = self._addresses[0]
        self._client_id = client_id
        self._will = will
        self._on_connect_cb = on_connect
        self._subscriptions = subscriptions
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lost = asyncio.Event()
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        self.generation = 0  # +1 per successful connection; the forwarder resets on change
        self.acks: deque[tuple[int, int]] = deque()  # (generation, mid), filled from paho's thread
        self.ack_ready = asyncio.Event()
        self._ack_signalled = False
        self.incoming: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self.rejected = 0

    # -- public API (event-loop thread) -----------------------------------------------
    async def run(self) -> None:
        """Keep a connection up until cancelled."""
        self._loop = asyncio.get_running_loop()
        delay = BACKOFF_FIRST_S
        while True:
            try:
                await self._connect_once()
                delay = BACKOFF_FIRST_S
                await self._lost.wait()
            except UplinkError as err:
                logger.warning("uplink %s: %s; retrying in %.1f s", self._client_id, err, delay)
            # on cancellation the connection stays up for close() to say "offline" on it
            await self._teardown()
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, BACKOFF_MAX_S)

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> int | None:
        """Hand a message to the current connection; return its mid, or None if offline."""
        client = self._client
        if client is None or not self.connected.is_set():
            return None
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return int(info.mid)

    async def close(self, offline_payload: bytes | None) -> None:
        """Say goodbye: publish the retained offline status, then disconnect cleanly."""
        client = self._client
        if client is not None and self.connected.is_set() and offline_payload is not None:
            info = client.publish(self._will.topic, offline_payload, qos=1, retain=True)
            await asyncio.to_thread(info.wait_for_publish, 2.0)
        await self._teardown()

    # -- connection handling ------------------------------------------------------------
    @property
    def broker(self) -> BrokerAddress:
        """The broker of the current (or the last attempted) connection."""
        return self._address

    async def _connect_once(self) -> None:
        self._lost.clear()
        # round robin: whatever ends this attempt, the next one tries the next broker
        self._address = self._addresses[self._next]
        self._next = (self._next + 1) % len(self._addresses)
        client = self._build_client()
        self._client = client
        addr = self._address
        try:
            await asyncio.to_thread(client.connect, addr.host, addr.port, self._config.keepalive_s)
        except (OSError, ssl.SSLError, ValueError) as err:
            raise UplinkError(f"cannot connect to {addr.host}:{addr.port}: {err}") from err
        client.loop_start()
        if not await wait_first(self.connected, self._lost, timeout_s=CONNECT_TIMEOUT_S):
            raise UplinkError(f"no CONNACK from {addr.host}:{addr.port}")
        if self._lost.is_set():
            raise UplinkError(f"connection refused by {addr.host}:{addr.port}")

    async def _teardown(self) -> None:
        client, self._client = self._client, None
        self.connected.clear()
        self.disconnected.set()
        if client is None:
            return
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)

    def _build_client(self) -> mqtt.Client:
        cfg = self._config
        v5 = cfg.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
            reconnect_on_failure=False,
        )
        client.will_set(self._will.topic, self._will.payload, qos=1, retain=True)
        if cfg.username:
            client.username_pw_set(
                cfg.username, cfg.password.get_secret_value() if cfg.password else None
            )
        if self._address.tls or cfg.tls:
            self._configure_tls(client)
        client.max_inflight_messages_set(cfg.max_inflight)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _configure_tls(self, client: mqtt.Client) -> None:
        tls = self._config.tls
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls and tls.ca_file else None,
            certfile=str(tls.cert_file) if tls and tls.cert_file else None,
            keyfile=str(tls.key_file) if tls and tls.key_file else None,
        )
        if tls and tls.insecure:
            client.tls_insecure_set(True)

    # -- paho callbacks (paho's network thread) -----------------------------------------
    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            logger.error("uplink %s: broker refused connection: %s", self._client_id, rc)
            self._call(self._lost.set)
            return
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        self._call(self._connected)

    def _connected(self) -> None:
        self.generation += 1
        self.disconnected.clear()
        self.connected.set()
        logger.info(
            "uplink %s: connected to %s:%d (generation %d)",
            self._client_id,
            self._address.host,
            self._address.port,
            self.generation,
        )
        self._on_connect_cb()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        logger.warning("uplink %s: disconnected (%s)", self._client_id, rc)
        self._call(self._disconnected)

    def _disconnected(self) -> None:
        self.connected.clear()
        self.disconnected.set()
        self._lost.set()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            # The broker took the message but refused it (v5: e.g. not authorised). Retrying
            # would jam the outbox forever; this is a deployment error, so say it loudly.
            logger.error("uplink %s: broker rejected mid %d: %s", self._client_id, mid, rc)
            self.rejected += 1
        self.acks.append((self.generation, mid))
        if not self._ack_signalled:  # one wake-up per burst of PUBACKs, not one per ack
            self._ack_signalled = True
            self._call(self._signal_acks)

    def _signal_acks(self) -> None:
        self._ack_signalled = False
        self.ack_ready.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._call(self.incoming.put_nowait, (msg.topic, bytes(msg.payload)))
