"""Ingest: wire messages → dedup → registry → rules → alarm changes and readings.

Messages are handled as they arrive (the rule decision happens at once); durability comes in
checkpoints: every ``checkpoint_interval_s`` (or ``checkpoint_max_messages``) the alarm
changes, the dedup tracker and the engine state are committed in one transaction by the
committer task, and only then are the covered messages acknowledged to the broker. After a
kill -9 the broker redelivers whatever was not acknowledged; the restored dedup state drops
what the last checkpoint already covered, so every message is processed exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as Database

from cloud.faults import DATABASE, until_done
from cloud.health import Health
from cloud.ingest.checkpoint import commit_checkpoint
from cloud.ingest.ingress import Incoming, Ingress
from cloud.lifecycle.rule_alarms import AlarmChange
from cloud.metrics import Metrics
from cloud.sinks import Point, ReadingSink
from rules import DeviceInfo, Engine, Transition
from wire import DataMessage, DropRecord, EventMessage, WireError, decode_sequenced, decode_status
from wire.dedup import SeqTracker
from wire.topics import SEQUENCED_KINDS, Topic, TopicKind, parse_topic

logger = logging.getLogger(__name__)

YIELD_EVERY = 500  # messages handled before letting other tasks (the committer) run
LOG_EVERY_S = 10.0  # a storm of one kind of garbage logs once per this, with a count
SINK_FLUSH_S = 2.0
URGENT = frozenset({"raise", "upgrade", "confirm"})  # checkpoint at once: people wait for these
# latency histograms observe one message in this many (and every transition): a histogram's
# observe() takes a lock and walks its buckets, more than the rest of a message's metrics
SAMPLE_EVERY = 16
TOPIC_CACHE = 100_000  # parsed topics remembered
UNKNOWN_LOGGED_MAX = 10_000  # unknown device ids remembered (each logged once)


States = tuple[dict[str, Any], dict[str, Any]]  # named snapshots, changed device states


@dataclass
class Batch:
    """What one checkpoint covers."""

    acks: list[tuple[int, int]] = field(default_factory=list)
    changes: list[AlarmChange] = field(default_factory=list)
    messages: int = 0
    started: float = field(default_factory=time.monotonic)
    urgent: bool = False  # holds a raise / upgrade: commit now, dispatch is waiting for it


def to_change(t: Transition) -> AlarmChange:
    return AlarmChange(
        kind=str(t.kind.value).lower(),
        key=t.key,
        rule_id=t.rule_id,
        device=t.device,
        gateway=t.gateway,
        severity=str(t.severity.value).lower(),
        ts=t.ts,
        title_en=t.title_en,
        title_zh=t.title_zh,
        category=t.category.value,
        notify=t.notify.value,
        value=t.value,
        clears=t.clears,
        detail=dict(t.detail),
    )


class Ingest:
    """Turns the ingress queue into decisions, checkpoints and acknowledgements."""

    def __init__(
        self,
        ingress: Ingress,
        engine: Engine,
        registry: dict[str, DeviceInfo],
        tracker: SeqTracker,
        db: Database,
        *,
        sink: ReadingSink | None,
        metrics: Metrics,
        interval_s: float,
        max_messages: int,
        clock: Callable[[], float] = time.time,
        health: Health | None = None,
        suffix: str = "",
        fence: Callable[[Connection], None] | None = None,
        own_counters: bool = True,
    ) -> None:
        """*suffix* names this ingest's checkpoint rows (``dedup{suffix}``...: a partition's
        own); *fence* runs in every checkpoint's transaction (raising when the partition was
        taken over); *own_counters*: export the message counters (False when a partition's
        owner sums them over its partitions)."""
        self.ingress = ingress
        self._suffix = suffix
        self._fence = fence
        self._health = health
        self.engine = engine
        self.registry = registry
        self.tracker = tracker
        self._db = db
        self._sink = sink
        self.metrics = metrics
        self._interval = interval_s
        self._max = max_messages
        self._clock = clock
        self._batch = Batch()
        self._commits: asyncio.Queue[tuple[Batch, States]] = asyncio.Queue(maxsize=2)
        self._unknown_logged: set[str] = set()
        self._refused_log: dict[str, tuple[float, int]] = {}
        self._next_advance = 0.0
        self.on_changes: Callable[[list[AlarmChange]], None] | None = None  # the alarm desk
        self.wait_room: Callable[[], Awaitable[None]] | None = None  # ...and its back-pressure
        self.processed = 0
        self.duplicates = 0
        # processed (first-time) messages and readings, checkpointed with the rest: the
        # proof that a redelivery after kill -9 was not processed twice
        self.counts: dict[str, int] = {
            "data": 0,
            "event": 0,
            "readings": 0,
            "dropped_records": 0,
            "status": 0,
        }
        self._topics: dict[str, Topic] = {}
        self._sampled = 0
        if own_counters:
            metrics.count_from(lambda: self.counts)
        self._inflight: asyncio.Future[None] | None = None
        self._inflight_batch: Batch | None = None
        self._room = asyncio.Event()  # set when the committer took a checkpoint off the queue

    # -- the handling task ----------------------------------------------------------------
    async def run(self) -> None:
        while True:
            await self._wait()
            self.ingress.ready.clear()
            await self._drain()
            self.ingress.resume_reading()
            self._advance()
            if self._checkpoint_due():
                self._checkpoint()

    async def _wait(self) -> None:
        """Until messages arrive, or a checkpoint falls due and the committer has room."""
        waits = {asyncio.ensure_future(self.ingress.ready.wait())}
        if self._commits.full():
            # the committer is behind: never block handling on it, just wait for room too
            self._room.clear()
            waits.add(asyncio.ensure_future(self._room.wait()))
            timeout = 1.0
        else:
            due = self._batch.started + self._interval - time.monotonic()
            timeout = max(due, 0.0) if (self._batch.messages or self._batch.changes) else 1.0
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def _checkpoint_due(self) -> bool:
        batch = self._batch
        if not (batch.messages or batch.changes):
            return False
        return (
            batch.urgent
            or batch.messages >= self._max
            or time.monotonic() - batch.started >= self._interval
        )

    async def _drain(self) -> None:
        queue = self.ingress.queue
        points: list[Point] = []
        handled = 0
        while queue:
            item = queue.popleft()
            self._handle(item, points)
            self._batch.acks.append((item.mid, item.qos))
            self._batch.messages += 1
            handled += 1
            if self._batch.messages >= self._max:
                self._checkpoint()
            if handled % YIELD_EVERY == 0:
                if points and self._sink is not None:
                    self._sink.submit(points)
                    points = []
                await asyncio.sleep(0)
        if points and self._sink is not None:
            self._sink.submit(points)

    def _advance(self) -> None:
        now = self._clock()
        if now >= self._next_advance:
            self._record(self.engine.advance(now))
            self._next_advance = now + 1.0

    def _checkpoint(self) -> None:
        """Hand the batch to the committer; if it is behind, keep gathering into this batch
        (the broker stops sending once its in-flight window is unacknowledged)."""
        if self._commits.full():
            return
        batch, self._batch = self._batch, Batch()
        self._commits.put_nowait((batch, self._states()))

    def _states(self) -> States:
        """The state a checkpoint stores: named snapshots, and the devices that changed."""
        base, devices = self.engine.snapshot_delta()
        s = self._suffix
        return {
            f"dedup{s}": self.tracker.snapshot(),
            f"engine_base{s}": base,
            f"counts{s}": dict(self.counts),
        }, devices

    # -- one message ------------------------------------------------------------------------
    def _handle(self, item: Incoming, points: list[Point]) -> None:
        m = self.metrics
        try:
            topic = self._topics.get(item.topic) or self._parse(item.topic)
            if topic.kind is TopicKind.STATUS:
                self.counts["status"] += 1
                self._record(self.engine.on_status(decode_status(topic, item.payload)))
                return
            if topic.kind not in SEQUENCED_KINDS:
                return  # commands and replies are not ours to ingest
            msg = decode_sequenced(topic, item.payload)
        except WireError as err:
            m.bad.labels(err.reason).inc()
            self._log_refused(err, item.topic)
            return
        self.processed += 1
        if not self.tracker.first_time(msg.gw, msg.seq):
            m.duplicates.inc()
            self.duplicates += 1
            return
        if isinstance(msg, DropRecord):
            self.counts["dropped_records"] += 1
            self.tracker.seen_ranges(msg.gw, msg.ranges)
            logger.warning(
                "gateway %s dropped %d telemetry messages by policy", msg.gw, msg.dropped_count()
            )
            return
        self._device_message(msg, item, points)

    def _parse(self, text: str) -> Topic:
        """Parse a topic once; topics repeat per device, so remember them (bounded)."""
        topic = parse_topic(text)
        if len(self._topics) >= TOPIC_CACHE:
            self._topics.clear()
        self._topics[text] = topic
        return topic

    def _log_refused(self, err: WireError, topic: str) -> None:
        """Log a refused message; in a storm, once per reason every LOG_EVERY_S with a count."""
        now = time.monotonic()
        last, skipped = self._refused_log.get(err.reason, (0.0, 0))
        if now - last < LOG_EVERY_S:
            self._refused_log[err.reason] = (last, skipped + 1)
            return
        self._refused_log[err.reason] = (now, 0)
        more = f" ({skipped} more like it not logged)" if skipped else ""
        logger.warning("refused message on %s: %s%s", topic[:200], err, more)

    def _device_message(
        self, msg: DataMessage | EventMessage, item: Incoming, points: list[Point]
    ) -> None:
        m = self.metrics
        device = self.registry.get(msg.dev)
        if device is None or device.gateway != msg.gw:
            reason = "unknown_device" if device is None else "wrong_gateway"
            m.bad.labels(reason).inc()
            if msg.dev not in self._unknown_logged:
                if len(self._unknown_logged) >= UNKNOWN_LOGGED_MAX:  # a flood of made-up ids
                    self._unknown_logged.clear()
                self._unknown_logged.add(msg.dev)
                logger.warning(
                    "device %s (gateway %s): %s; its messages are counted and ignored",
                    msg.dev,
                    msg.gw,
                    reason.replace("_", " "),
                )
            return
        if isinstance(msg, DataMessage):
            self.counts["data"] += 1
            self.counts["readings"] += len(msg.values)
            transitions = self.engine.on_data(msg, device)
            if msg.values:
                points.append(Point(device.type, msg.dev, msg.gw, device.grid, msg.ts, msg.values))
        else:
            self.counts["event"] += 1
            transitions = self.engine.on_event(msg, device)
        self._sampled += 1
        if self._sampled % SAMPLE_EVERY == 0 or transitions:  # every decision that matters
            m.decision.observe(time.monotonic() - item.arrived)
            m.lag.observe(max(0.0, self._clock() - msg.ts))
        if transitions:
            self._record(transitions)

    def _record(self, transitions: list[Transition]) -> None:
        if not transitions:
            return
        changes = [to_change(t) for t in transitions]
        for c in changes:
            self.metrics.transitions.labels(c.kind).inc()
        self._batch.changes.extend(changes)
        if any(c.kind in URGENT for c in changes):
            self._batch.urgent = True

    # -- the committer task ----------------------------------------------------------------
    async def run_commits(self) -> None:
        """Commit checkpoints in order; acknowledge their messages only afterwards."""
        while True:
            batch, states = await self._commits.get()
            self._room.set()
            if self.wait_room is not None:
                await self.wait_room()  # the desk is behind: its queue must not grow without end
            await self._commit(batch, states)

    async def _commit(self, batch: Batch, states: States) -> None:
        sink = self._sink
        if sink is not None and sink.available:
            # readings before the acknowledgement: an acknowledged message's readings are stored
            # (both sinks are idempotent per device and event time, so a redelivery adds nothing)
            await sink.flush(SINK_FLUSH_S)
        # shielded: a cancelled task must not leave a commit half-awaited while a later one starts
        # a locked or unreachable database is waited out (messages stay unacknowledged, the
        # broker keeps them); anything else ends the worker before anything is acknowledged
        self._inflight = asyncio.ensure_future(
            until_done(
                lambda: commit_checkpoint(self._db, batch.changes, *states, fence=self._fence),
                part=DATABASE,
                health=self._health,
                what=f"checkpoint of {batch.messages} messages not committed",
            )
        )
        self._inflight_batch = batch
        await asyncio.shield(self._inflight)
        self._committed(batch)

    def _committed(self, batch: Batch) -> None:
        self._inflight = self._inflight_batch = None
        self.ingress.ack(batch.acks)
        self.metrics.checkpoints.inc()
        self.metrics.open_alarms.set(len(self.engine.open_alarms()))
        if self._sink is not None:
            self.metrics.sink_buffered.set(self._sink.stats.buffered)
            self.metrics.sink_dropped.set(self._sink.stats.dropped)
        if batch.changes and self.on_changes is not None:
            self.on_changes(batch.changes)

    def abandon(self) -> None:
        """After the tasks are cancelled, when nothing more may be committed (the partition
        went to another worker): a commit still in flight ends on its own; its failure is
        expected and only logged."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            inflight.add_done_callback(_log_abandoned)

    async def close(self) -> None:
        """After the tasks are cancelled: commit, in order, everything handled so far."""
        if self._inflight is not None and self._inflight_batch is not None:
            await self._inflight
            self._committed(self._inflight_batch)
        while not self._commits.empty():
            await self._commit(*self._commits.get_nowait())
        if self._batch.messages or self._batch.changes:
            batch, self._batch = self._batch, Batch()
            await self._commit(batch, self._states())


def _log_abandoned(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        logger.info(
            "a checkpoint abandoned with its partition was not stored: %s", done.exception()
        )
