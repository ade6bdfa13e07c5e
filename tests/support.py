"""Test helpers shared by unit and integration tests: waiting with deadlines, recording MQTT."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_service(what: str) -> None:
    """Fail under CI (the service must be installed there), skip on a developer's machine."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but is not available")
    pytest.skip(f"{what} not available")


def wait_until(
    condition: Callable[[], bool], timeout_s: float, what: str, step_s: float = 0.02
) -> None:
    """Wait for *condition* with a deadline; fail naming *what* if it never holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(step_s)


class Recorder:
    """A paho subscriber with a persistent session that keeps every message it gets."""

    def __init__(self, port: int, topic: str, client_id: str = "test-recorder") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.topic = topic
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("recorder could not subscribe")

    def _on_connect(self, client: mqtt.Client, *_a: object) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def until(
    condition: Callable[[], Any],
    timeout_s: float,
    what: str,
    step_s: float = 0.02,
    report: Callable[[], str] | None = None,
) -> Any:
    """Async twin of wait_until for tests whose event loop also runs simulators or a gateway;
    *report* says what was found instead, when it times out."""
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        if time.monotonic() > deadline:
            found = f": {report()}" if report is not None else ""
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}{found}")
        await asyncio.sleep(step_s)
    return result
