"""`commission`: prove the whole path from a device's test button to the broker.

The installer presses the test button; the gateway polls the device, sees the test bit
rise and publishes a ``test_button`` event; we subscribe to that device's event topic on
the gateway's own broker and wait for it. This is the installer's own short-lived MQTT
client (no will, clean session), separate from the gateway's uplink on purpose: it must
neither leave retained state behind nor share the gateway's client id.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge.config import MqttConfig
from edge.errors import UplinkError
from edge.installer.errors import BrokerUnreachableError, CommissionTimeoutError, UsageError
from edge.uplink import BrokerAddress
from wire import EventMessage, WireError, decode_sequenced
from wire.topics import event_topic

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
TEST_EVENT = "test_button"

# What paho's thread hands to the caller: ("ready" | "refused" | "lost" | "message", detail)
_Note = tuple[str, Any]


@dataclass(frozen=True)
class TestEvent:
    """The test event that reached the broker, and how long after we asked for it."""

    device: str
    seq: int
    elapsed_s: float
    message: EventMessage


def wait_for_test_event(
    mqtt_config: MqttConfig,
    gateway_id: str,
    device_id: str,
    *,
    timeout_s: float,
    broker_url: str | None = None,
    on_ready: Callable[[str], None] = lambda _topic: None,
) -> TestEvent:
    """Subscribe to *device_id*'s events, call *on_ready*, wait for an active test event.

    BrokerUnreachableError if the broker refuses or does not answer; CommissionTimeoutError
    if no test event arrives within *timeout_s* of *on_ready*.
    """
    topic = event_topic(gateway_id, device_id)
    notes: queue.Queue[_Note] = queue.Queue()
    url = broker_url or mqtt_config.url
    client = _client(mqtt_config, url, topic, notes)
    try:
        _connect(client, url, mqtt_config.keepalive_s)
        _await_ready(notes, url, topic)
        on_ready(topic)
        return _await_test_event(notes, device_id, timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()


def _client(cfg: MqttConfig, url: str, topic: str, notes: queue.Queue[_Note]) -> mqtt.Client:
    v5 = cfg.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"gridalarm-installer-{os.getpid()}",
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else True,
        reconnect_on_failure=False,
    )
    if cfg.username:
        client.username_pw_set(
            cfg.username, cfg.password.get_secret_value() if cfg.password else None
        )
    if _address(url).tls or cfg.tls:
        tls = cfg.tls
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls and tls.ca_file else None,
            certfile=str(tls.cert_file) if tls and tls.cert_file else None,
            keyfile=str(tls.key_file) if tls and tls.key_file else None,
        )
        if tls and tls.insecure:
            client.tls_insecure_set(True)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            notes.put(("refused", f"broker refused the connection: {rc}"))
        else:
            c.subscribe(topic, qos=1)

    def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, rcs: list[ReasonCode], _p: Any) -> None:
        if any(rc.is_failure for rc in rcs):
            notes.put(("refused", f"broker refused the subscription to {topic} (ACL?)"))
        else:
            notes.put(("ready", None))

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        notes.put(("message", (msg.topic, bytes(msg.payload), time.monotonic())))

    def on_disconnect(_c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        notes.put(("lost", f"lost the broker connection: {rc}"))

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    return client


def _address(url: str) -> BrokerAddress:
    try:
        return BrokerAddress.parse(url)
    except UplinkError as err:
        raise UsageError(str(err)) from err


def _connect(client: mqtt.Client, url: str, keepalive_s: int) -> None:
    addr = _address(url)
    try:
        client.connect(addr.host, addr.port, keepalive_s)
    except (OSError, ValueError) as err:
        raise BrokerUnreachableError(f"cannot connect to the broker at {url}: {err}") from err
    client.loop_start()


def _await_ready(notes: queue.Queue[_Note], url: str, topic: str) -> None:
    try:
        kind, detail = notes.get(timeout=CONNECT_TIMEOUT_S)
    except queue.Empty:
        raise BrokerUnreachableError(
            f"no answer from the broker at {url} in {CONNECT_TIMEOUT_S:.0f} s"
        ) from None
    if kind != "ready":
        raise BrokerUnreachableError(f"{detail} ({url})")
    logger.debug("subscribed to %s", topic)


def _await_test_event(notes: queue.Queue[_Note], device_id: str, timeout_s: float) -> TestEvent:
    start = time.monotonic()
    deadline = start + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            kind, detail = notes.get(timeout=remaining)
        except queue.Empty:
            break
        if kind == "lost":
            raise BrokerUnreachableError(f"{detail}; waited {time.monotonic() - start:.0f} s")
        if kind != "message":
            continue
        topic, payload, received = detail
        try:
            message = decode_sequenced(topic, payload)
        except WireError as err:
            logger.warning("device %s: ignoring a malformed event: %s", device_id, err)
            continue
        if isinstance(message, EventMessage) and message.event == TEST_EVENT and message.active:
            return TestEvent(device_id, message.seq, received - start, message)
        logger.info(
            "device %s: event %s (active %s), still waiting for %s",
            device_id,
            getattr(message, "event", "?"),
            getattr(message, "active", None),
            TEST_EVENT,
        )
    raise CommissionTimeoutError(
        f"no {TEST_EVENT} event from {device_id} reached the broker in {timeout_s:g} s"
    )
