"""The cloud's MQTT connection: the only cloud module that owns an ingest client.

paho-mqtt rather than aiomqtt here, on purpose: aiomqtt acknowledges a QoS 1 message as soon
as it is read (FIELD-NOTES trap 3), so a crash would lose what was acknowledged but not yet
handled. paho 2.x lets us acknowledge *after* the checkpoint that covers a message is
committed. A fixed client id with a persistent session makes the broker keep everything
published while the cloud is down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud.config import CloudMqtt

logger = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 86400  # MQTT 5: how long the broker keeps our session while we are away


@dataclass(frozen=True, slots=True)
class Incoming:
    mid: int
    qos: int
    topic: str
    payload: bytes
    retain: bool
    arrived: float  # time.monotonic() when paho handed it over


class Ingress:
    """Receives messages into a deque (filled from paho's thread) and acknowledges on demand."""

    def __init__(self, config: CloudMqtt, topics: list[str]) -> None:
        self._config = config
        self._topics = topics
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._signalled = False
        self.queue: deque[Incoming] = deque()
        self.ready = asyncio.Event()
        self.connected = asyncio.Event()

    async def start(self) -> None:
        """Connect (paho reconnects by itself after that)."""
        self._loop = asyncio.get_running_loop()
        client = self._build()
        self._client = client
        parts = urlsplit(self._config.url)
        host, port = (
            parts.hostname or "127.0.0.1",
            parts.port or (8883 if parts.scheme == "mqtts" else 1883),
        )
        props = None
        if self._config.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
        client.connect_async(
            host, port, self._config.keepalive_s, clean_start=False, properties=props
        )
        client.loop_start()

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)

    def ack(self, items: Iterable[tuple[int, int]]) -> None:
        """Acknowledge (mid, qos) pairs whose handling is now durable."""
        client = self._client
        if client is None:
            return
        for mid, qos in items:
            if qos > 0:
                client.ack(mid, qos)

    def _build(self) -> mqtt.Client:
        cfg = self._config
        v5 = cfg.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if cfg.username:
            client.username_pw_set(
                cfg.username, cfg.password.get_secret_value() if cfg.password else None
            )
        if urlsplit(cfg.url).scheme == "mqtts":
            client.tls_set(
                ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                certfile=str(cfg.cert_file) if cfg.cert_file else None,
                keyfile=str(cfg.key_file) if cfg.key_file else None,
            )
        client.reconnect_delay_set(1, 10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    # -- paho's thread ------------------------------------------------------------------
    def _call(self, fn: Any, *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, rc: ReasonCode, _p: Any
    ) -> None:
        if rc.is_failure:
            logger.error("cloud ingress %s: broker refused: %s", self._config.client_id, rc)
            return
        group = self._config.shared_group
        for topic in self._topics:
            client.subscribe(f"$share/{group}/{topic}" if group else topic, qos=1)
        logger.info(
            "cloud ingress %s: connected (session present: %s)",
            self._config.client_id,
            flags.session_present,
        )
        self._call(self.connected.set)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        logger.warning("cloud ingress %s: disconnected (%s)", self._config.client_id, rc)
        self._call(self.connected.clear)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.queue.append(
            Incoming(
                msg.mid, msg.qos, msg.topic, bytes(msg.payload), bool(msg.retain), time.monotonic()
            )
        )
        if not self._signalled:  # one wake-up per burst
            self._signalled = True
            self._call(self._wake)

    def _wake(self) -> None:
        self._signalled = False
        self.ready.set()
