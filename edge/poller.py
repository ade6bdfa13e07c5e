"""Polls the devices of one bus: one transaction at a time, each device on its own schedule.

Report by exception: a data message when a value moves beyond its deadband, when the
quality changes, or at the heartbeat; events (status-bit edges, counters) at once. A unit
that stops answering is backed off exponentially and reported ``comm_error`` once per
heartbeat; "unavailable" and "back online" are logged once, not per poll.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.config import DeviceConfig, SerialBus, TcpBus
from edge.drivers import open_bus
from edge.emitter import Emitter
from edge.errors import BusError, DeviceError
from edge.profile import Decoded, Profile
from wire import Quality

logger = logging.getLogger(__name__)

Value = float | int | bool
BACKOFF_AFTER_FAILURES = 3
BACKOFF_MAX_S = 60.0
BUS_RETRY_S = 5.0


@dataclass
class DeviceState:
    """What the gateway knows of one device between polls."""

    config: DeviceConfig
    profile: Profile
    values: dict[str, Value] | None = None  # last good reading
    reported: dict[str, Value] | None = None  # last published values
    reported_at: float = float("-inf")  # monotonic
    quality: Quality | None = None
    failures: int = 0
    last_error: str = ""
    counters: Counter[str] = field(default_factory=Counter)

    def interval(self) -> float:
        """Seconds until the next poll: the configured interval, backed off when dead."""
        base = self.config.poll_interval_s
        extra = self.failures - BACKOFF_AFTER_FAILURES + 1
        return base if extra <= 0 else min(base * 2**extra, max(BACKOFF_MAX_S, base))


class BusPoller:
    """Owns one bus: the schedule, the device states, the transactions."""

    def __init__(
        self, bus: SerialBus | TcpBus, devices: list[DeviceState], emitter: Emitter
    ) -> None:
        self.config = bus
        self.devices = {d.config.id: d for d in devices}
        self._emitter = emitter
        self._urgent: asyncio.Queue[str] = asyncio.Queue()
        self._client: Any | None = None
        self.bus_counters: Mapping[str, int] = {}
        self.open = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                async with open_bus(self.config) as client:
                    self._client = client
                    self.bus_counters = client.counters
                    self.open.set()
                    logger.info("bus %s: open", self.config.id)
                    await self._schedule(client)
            except BusError as err:
                logger.warning(
                    "bus %s: unusable (%s); retrying in %.0f s", self.config.id, err, BUS_RETRY_S
                )
                self._bus_down(str(err))
            finally:
                self._client = None
                self.open.clear()
            await asyncio.sleep(BUS_RETRY_S)

    def request_poll(self, device_id: str) -> None:
        """Poll *device_id* before anything else that is due."""
        self._urgent.put_nowait(device_id)

    async def read_now(self, device_id: str) -> DeviceState:
        """Poll one device now, outside its schedule, and return its state."""
        state = self.devices[device_id]
        client = self._client
        if client is None:
            raise BusError(f"bus {self.config.id} is not open")
        await self._poll(client, state)
        return state

    async def write_register(self, device_id: str, address: int, value: int) -> None:
        state = self.devices[device_id]
        client = self._client
        if client is None:
            raise BusError(f"bus {self.config.id} is not open")
        await client.write_register(
            state.config.unit, address, value, timeout_s=state.config.timeout_s
        )

    async def _schedule(self, client: Any) -> None:
        now = time.monotonic()
        heap = [(now, i, d.config.id) for i, d in enumerate(self.devices.values())]
        heapq.heapify(heap)
        while True:
            due, i, dev_id = heap[0]
            delay = due - time.monotonic()
            if delay > 0:
                try:  # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel
                    async with asyncio.timeout(delay):
                        urgent = await self._urgent.get()
                except TimeoutError:
                    pass
                else:
                    await self._poll(client, self.devices[urgent])
                    continue
            state = self.devices[dev_id]
            await self._poll(client, state)
            # keep the cadence; when the bus is saturated, poll as fast as it allows
            heapq.heapreplace(heap, (max(due + state.interval(), time.monotonic()), i, dev_id))

    async def _poll(self, client: Any, state: DeviceState) -> None:
        cfg = state.config
        try:
            decoded: Decoded = await client.read_device(
                cfg.unit, state.profile, timeout_s=cfg.timeout_s, retries=cfg.retries
            )
        except DeviceError as err:
            self._failed(state, err.kind, str(err))
            return
        self._succeeded(state, decoded)

    def _succeeded(self, state: DeviceState, decoded: Decoded) -> None:
        ts = time.time()
        dev = state.config.id
        current = decoded.values
        if state.quality is Quality.COMM_ERROR:
            logger.info("device %s: back online after %d failed polls", dev, state.failures)
        state.failures = 0
        state.counters["good"] += 1
        if decoded.invalid:
            state.counters["invalid_values"] += len(decoded.invalid)
        for ev in state.profile.events(state.values, current):
            self._emitter.event(dev, ts, ev.name, ev.active, {**current, **ev.detail})
        state.values = dict(current)
        now = time.monotonic()
        changed = state.reported is None or state.profile.changed(state.reported, current)
        if (
            changed
            or state.quality is not Quality.GOOD
            or now - state.reported_at >= state.config.heartbeat_s
        ):
            self._emitter.data(dev, ts, Quality.GOOD, current, decoded.invalid)
            state.reported, state.reported_at, state.quality = dict(current), now, Quality.GOOD

    def _failed(self, state: DeviceState, kind: str, message: str) -> None:
        dev = state.config.id
        state.failures += 1
        state.counters[kind] += 1
        state.last_error = message
        now = time.monotonic()
        if state.quality is not Quality.COMM_ERROR:
            logger.warning(
                "device %s (bus %s unit %d): unavailable: %s",
                dev,
                self.config.id,
                state.config.unit,
                message,
            )
        elif now - state.reported_at < state.config.heartbeat_s:
            return
        self._emitter.data(dev, time.time(), Quality.COMM_ERROR, {})
        state.quality, state.reported_at = Quality.COMM_ERROR, now

    def _bus_down(self, message: str) -> None:
        for state in self.devices.values():
            self._failed(state, "bus_error", message)
