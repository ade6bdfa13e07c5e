"""The recorder: every wire message with its receive time, into a recording file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from replay.errors import BrokerUnreachable
from replay.link import BrokerTls, Client, MqttError, connect
from replay.recording import RecordingWriter, make_header
from rules.devices import DeviceInfo
from wire.topics import gateway_filter

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0  # a killed recorder keeps all but the last second


@dataclass(frozen=True, slots=True)
class RecordOptions:
    broker: str
    out: Path
    duration_s: float | None = None
    devices: Iterable[DeviceInfo] | None = None  # embedded in the header for replay
    topic: str = gateway_filter()  # ga/v1/+/# : everything every gateway sends
    tls: BrokerTls | None = None  # for an mqtts:// broker: CA, client certificate and key


class Recorder:
    """Subscribes to the wire topics and writes what arrives; ``stop()`` ends it cleanly."""

    def __init__(self, opts: RecordOptions, clock: Callable[[], float] = time.time) -> None:
        self.opts = opts
        self.messages = 0
        self.subscribed = asyncio.Event()
        self._stop = asyncio.Event()
        self._clock = clock

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        """Record until stopped or the duration is over; return the message count."""
        header = make_header(self.opts.broker, self._clock(), self.opts.devices, "record")
        writer = RecordingWriter(self.opts.out, header)
        try:
            async with connect(self.opts.broker, "record", self.opts.tls) as client:
                await client.subscribe(self.opts.topic, qos=1)
                self.subscribed.set()
                logger.info(
                    "recording %s from %s to %s", self.opts.topic, self.opts.broker, self.opts.out
                )
                await self._until_stopped(client, writer)
        finally:
            writer.close()
        return self.messages

    async def _until_stopped(self, client: Client, writer: RecordingWriter) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                receiving = tg.create_task(self._receive(client, writer), name="record.receive")
                flushing = tg.create_task(self._flush(writer), name="record.flush")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.opts.duration_s):
                        await self._stop.wait()
                receiving.cancel()
                flushing.cancel()
        except* MqttError as group:
            err = group.exceptions[0]
            raise BrokerUnreachable(
                f"lost the broker after {self.messages} messages ({err}); the file keeps them"
            ) from err

    async def _receive(self, client: Client, writer: RecordingWriter) -> None:
        clock = self._clock
        async for message in client.messages:
            payload = message.payload
            if isinstance(payload, str):
                payload = payload.encode()
            elif not isinstance(payload, bytes | bytearray):
                payload = b"" if payload is None else str(payload).encode()
            writer.write(clock(), message.topic.value, bytes(payload), bool(message.retain))
            self.messages += 1

    async def _flush(self, writer: RecordingWriter) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            writer.flush()
