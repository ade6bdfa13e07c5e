"""CPU per message of the ingest's own work, no broker and no database (run by hand).

    python benchmarks/ingest_hot_path.py [--messages 50000] [--rounds 9]

Live benchmarks (cloud_ingest.py, peers/node_red.py) move with whatever else the machine runs:
on this shared 2-core machine the same build drained 37k msg/s one hour and 80k the next.
This one takes the broker, the kernel and the databases out and times what only our code
decides, in one thread:

- ours: the same PUBLISH packets as cloud_ingest.py's backlog (1,000 flood gauges, 5 readings
  each, QoS 1), cut into 64 KiB reads, through the bulk client's fast path into the ingress
  queue, then ``Ingest._drain`` (topic, decode, dedup, registry, the shipped rule set, the
  sink's points), the engine's clock and a checkpoint's state every ``max_messages`` (as the
  worker takes them; nothing is committed). The garbage collector is tuned as the worker
  tunes it.
- baseline: the floor any Python consumer pays for the same reads: each packet's topic and
  payload taken off the buffer (the fast path's parser) and its payload decoded by msgspec
  into a dict.

Prints the median µs per message of each over the rounds and their ratio. For figures that do
not move at all, run it under callgrind twice (``--messages N`` and ``2N``) and divide the
difference in instructions by N.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))  # cloud_ingest's backlog
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cloud_ingest import devices, payloads

from cloud.config import CloudMqtt
from cloud.ingest.bulk_client import _publish_at
from cloud.ingest.ingress import Ingress
from cloud.ingest.pipeline import Ingest
from cloud.metrics import Metrics
from cloud.sinks import Point
from cloud.worker import _settle_heap
from rules import Engine
from rules.folder import load_rules
from wire.dedup import SeqTracker

READ = 65536  # bytes per socket read, as the bulk client asks for


def packet(topic: str, body: bytes, mid: int) -> bytes:
    """A QoS 1 PUBLISH (MQTT 3.1.1)."""
    name = topic.encode()
    rest = len(name).to_bytes(2, "big") + name + mid.to_bytes(2, "big") + body
    n, out = len(rest), bytearray([0x32])
    while True:
        out.append((n & 127) | (128 if n > 127 else 0))
        n >>= 7
        if not n:
            return bytes(out) + rest


def reads(items: list[tuple[str, bytes]]) -> list[bytes]:
    """The backlog as the socket would hand it over: reads of up to READ bytes, whole packets."""
    out: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    for i, (topic, body) in enumerate(items):
        p = packet(topic, body, i % 65535 + 1)
        if size + len(p) > READ:
            out.append(b"".join(chunk))
            chunk, size = [], 0
        chunk.append(p)
        size += len(p)
    out.append(b"".join(chunk))
    return out


class Points:
    """A sink that takes the points and keeps their count (what the worker's sink is handed)."""

    available = False

    def __init__(self) -> None:
        self.n = 0

    def submit(self, points: list[Point]) -> None:
        self.n += len(points)


async def ours(chunks: list[bytes], messages: int, now: float) -> float:
    """µs of CPU per message through the ingest."""
    ingress = Ingress(CloudMqtt(url="mqtt://127.0.0.1:1", client_id="bench", protocol="3.1.1"), [])
    ingress.start()
    client = ingress._client
    assert client is not None
    sink = Points()
    ingest = Ingest(
        ingress, Engine(load_rules(None)), {d.device: d for d in devices()}, SeqTracker(), None,  # type: ignore[arg-type]
        sink=sink, metrics=Metrics(), interval_s=0.5, max_messages=5000, clock=lambda: now,  # type: ignore[arg-type]
    )  # fmt: skip
    deliver = ingress._on_publish
    _settle_heap()
    cpu = time.process_time()
    for chunk in chunks:
        client._rbuf, client._rpos = chunk, 0
        client._publishes(deliver)
        await ingest._drain()
        ingest._advance()
        if ingest._checkpoint_due():
            ingest._checkpoint()
        while not ingest._commits.empty():  # the committer's part is not measured
            ingest._commits.get_nowait()
    cpu = time.process_time() - cpu
    if ingest.counts["data"] != messages or sink.n != messages:
        raise SystemExit(f"the ingest did not take every message: {ingest.counts}")
    return cpu / messages * 1e6


def baseline(chunks: list[bytes], messages: int) -> float:
    """µs of CPU per message to take each packet off the reads and decode its JSON."""
    decode = msgspec.json.Decoder().decode
    _settle_heap()
    cpu = time.process_time()
    n = 0
    for chunk in chunks:
        pos, size = 0, len(chunk)
        while pos < size:
            parsed = _publish_at(chunk, pos, size, False)
            assert parsed is not None
            pos = parsed[0]
            decode(parsed[4])
            n += 1
    cpu = time.process_time() - cpu
    assert n == messages
    return cpu / messages * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    items = payloads(args.messages, 5)
    now = msgspec.json.decode(items[-1][1])["ts"]  # the engine's clock: the backlog's end
    chunks = reads(items)
    del items
    gc.collect()
    base, mine = [], []
    for r in range(args.rounds):
        base.append(baseline(chunks, args.messages))
        mine.append(asyncio.run(ours(chunks, args.messages, now)))
        print(f"round {r + 1}: baseline {base[-1]:.2f} µs/msg, ours {mine[-1]:.2f} µs/msg")
    b, o = statistics.median(base), statistics.median(mine)
    print(
        f"ingest_hot_path: median ours {o:.2f} µs CPU/msg, baseline (take apart + JSON decode) "
        f"{b:.2f} µs, ratio {o / b:.1f}; {args.messages:,} messages x 5 readings, "
        f"{len(chunks)} reads, {args.rounds} rounds"
    )


if __name__ == "__main__":
    main()
