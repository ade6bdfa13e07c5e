"""Re-publishing a recording onto a live broker, paced like the original (scaled by speed)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from replay.errors import BrokerUnreachable
from replay.link import Client, MqttError, connect
from replay.reader import RecordingReader

IN_FLIGHT = 500  # unacknowledged publishes; far below paho's 65,535 ids
AHEAD_S = 0.002  # sleep only when this far ahead of the schedule


@dataclass
class RepublishResult:
    messages: int = 0
    elapsed_s: float = 0.0
    span_s: float = 0.0  # receive-time span of the recording that was sent


async def republish(
    reader: RecordingReader,
    broker: str,
    speed: float | None,
    progress: Callable[[int], None] | None = None,
) -> RepublishResult:
    """Publish every entry (QoS 1, original retain flag) at rt / speed; None: as fast as acked."""
    result = RepublishResult()
    try:
        async with connect(broker, "replay") as client:
            await _send(reader, client, speed, result, progress)
    except MqttError as err:
        raise BrokerUnreachable(f"lost {broker} after {result.messages} messages: {err}") from err
    return result


async def _send(
    reader: RecordingReader,
    client: Client,
    speed: float | None,
    result: RepublishResult,
    progress: Callable[[int], None] | None,
) -> None:
    window = asyncio.Semaphore(IN_FLIGHT)
    failures: list[BaseException] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    first_rt: float | None = None
    rt = 0.0

    async def publish(topic: str, payload: bytes, retain: bool) -> None:
        try:
            await client.publish(topic, payload, qos=1, retain=retain)
        except MqttError as err:
            failures.append(err)
        finally:
            window.release()

    async with asyncio.TaskGroup() as tg:
        for chunk in reader.chunks():
            for entry in chunk:
                rt = entry.rt
                if first_rt is None:
                    first_rt, started = rt, loop.time()
                if speed is not None:
                    ahead = started + (rt - first_rt) / speed - loop.time()
                    if ahead > AHEAD_S:
                        await asyncio.sleep(ahead)
                await window.acquire()
                if failures:
                    raise failures[0]
                # tasks start in creation order, so publishes leave in recording order
                tg.create_task(publish(entry.topic, entry.payload_bytes(), entry.retain))
                result.messages += 1
            if progress:
                progress(result.messages)
    if failures:
        raise failures[0]
    result.elapsed_s = loop.time() - started
    result.span_s = rt - first_rt if first_rt is not None else 0.0
