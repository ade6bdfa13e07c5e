"""The offline replay loop: a recording through one or more rule engines, no side effects.

Mirrors live ingest (cloud/ingest.py) message for message: status → ``on_status``; data,
event and drop records decoded by wire's decoders, deduplicated by (gateway, seq) with the
same ``SeqTracker`` (a drop record's ranges count as seen); a device not in the registry, or
registered on another gateway, is counted and skipped. The engine's clock is the receive
time: ``advance(rt)`` whenever rt has moved on by a second, and once at the end.

Several engines (``--compare``) share one pass: the file is read and decoded once.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from replay.reader import RecordingReader
from replay.recording import Entry
from rules import DeviceInfo, Engine, Transition, TransitionKind
from wire import (
    DataMessage,
    DropRecord,
    WireError,
    decode_sequenced,
    decode_status,
    decode_vouched,
)
from wire.dedup import SeqTracker
from wire.topics import SEQUENCED_KINDS, Topic, TopicKind, parse_topic

ADVANCE_EVERY_S = 1.0
PROGRESS_EVERY_S = 0.25
PACE_SLACK_S = 0.002  # sleep only when this far ahead of the paced schedule


@dataclass(frozen=True, slots=True)
class Step:
    """One transition as the replay saw it.

    ``rt``: receive time of the message (or clock tick) that produced it. ``trigger_ts``: the
    event time of the message that caused it — the message itself, or for a raise after an
    on-delay ``ts - for_s``, or for other timers (deadman, off-delays) the device's last
    message. Time to raise is ``transition.ts - trigger_ts``.
    """

    transition: Transition
    rt: float
    trigger_ts: float | None


@dataclass
class ReplayStats:
    """Counts of what the replay read and did (deterministic: no wall-clock figures)."""

    lines: int = 0
    status: int = 0
    data: int = 0
    events: int = 0
    drop_records: int = 0
    readings: int = 0
    duplicates: int = 0
    unknown_device: int = 0
    wrong_gateway: int = 0
    other_topics: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # WireError reason → count
    unknown_devices: set[str] = field(default_factory=set)
    first_rt: float | None = None
    last_rt: float | None = None

    def as_dict(self) -> dict[str, object]:
        out = {k: v for k, v in vars(self).items() if k not in ("refused", "unknown_devices")}
        out["refused"] = dict(sorted(self.refused.items()))
        out["unknown_devices"] = sorted(self.unknown_devices)[:100]
        return out


@dataclass
class Progress:
    """What a progress display needs, handed over at most every PROGRESS_EVERY_S."""

    compressed_read: int
    size: int
    lines: int
    readings: int


@dataclass
class ReplayRun:
    steps: list[list[Step]]  # per engine, in order
    stats: ReplayStats
    elapsed_s: float = 0.0  # wall clock; reported on the terminal, never in the JSON


MergeKey = tuple[int, int, float, str]


class _Loop:
    """The per-message work and its state; ``_unpaced`` handles the usual message in its own
    loop with the same state and hands everything else to ``message``."""

    def __init__(self, engines: Sequence[Engine], registry: dict[str, DeviceInfo]) -> None:
        self.engines = engines
        self.single = engines[0] if len(engines) == 1 else None
        self.registry = registry
        self.tracker = SeqTracker()
        self.stats = ReplayStats()
        self.steps: list[list[Step]] = [[] for _ in engines]
        self.topics: dict[str, Topic | None] = {}
        self.last_ts: dict[str, float] = {}  # device → event time of its last message
        self.next_advance = float("-inf")
        self.delays: dict[tuple[int, str, str], float] = {}
        # a partition's run (replay.parallel) keys each step for the merge: (line, 0, due,
        # timer key) for a clock tick before that line, (line, 1, 0.0, "") for the line itself
        self.keys: list[list[MergeKey]] = [[] for _ in engines]

    def advance(self, rt: float, line: int | None = None) -> None:
        """Tick the engines' clocks; a part's run (*line* given) keys the steps by the
        timers that made them."""
        self.next_advance = rt + ADVANCE_EVERY_S
        for i, engine in enumerate(self.engines):
            fired: list[tuple[float, str, int]] | None = None if line is None else []
            if out := engine.advance(rt, fired):
                self.steps[i].extend(Step(t, rt, self._trigger(engine, t)) for t in out)
                keys, begin = self.keys[i], 0
                for due, key, end in fired or ():
                    keys.extend([(line, 0, due, key)] * (end - begin))  # type: ignore[list-item]
                    begin = end

    def _trigger(self, engine: Engine, t: Transition) -> float | None:
        """Event time of the message a timer transition goes back to.

        A raise after an on-delay fires exactly ``for_s`` after the message that made the
        condition true; anything else (deadman, off-delays) goes back to the last message.
        """
        if t.kind is TransitionKind.RAISE:
            key = (id(engine), t.device or t.gateway, t.rule_id)
            delay = self.delays.get(key)
            if delay is None:
                delay = self.delays[key] = _on_delay(engine, t, self.registry)
            if delay:
                return t.ts - delay
        return self.last_ts.get(t.device or t.gateway)

    def topic(self, name: str) -> Topic | None:
        try:
            t: Topic | None = parse_topic(name)
        except WireError as err:
            self.stats.refused[err.reason] += 1
            t = None
        self.topics[name] = t
        return t

    def stray(self, dev: str, device: DeviceInfo | None) -> None:
        """A message of a device not registered, or registered on another gateway: counted."""
        if device is None:
            self.stats.unknown_device += 1
        else:
            self.stats.wrong_gateway += 1
        self.stats.unknown_devices.add(dev)

    def message(self, rt: float, topic_name: str, payload: bytes) -> None:  # noqa: PLR0911, PLR0912
        if rt >= self.next_advance:
            self.advance(rt)
        stats = self.stats
        try:
            topic = self.topics[topic_name]
        except KeyError:
            topic = self.topic(topic_name)
        if topic is None:
            return
        kind = topic.kind
        try:
            if kind is TopicKind.STATUS:
                status = decode_status(topic, payload)
                stats.status += 1
                self.last_ts[status.gw] = status.ts
                for i, engine in enumerate(self.engines):
                    if out := engine.on_status(status):
                        self.steps[i].extend(Step(t, rt, status.ts) for t in out)
                return
            if kind not in SEQUENCED_KINDS:
                stats.other_topics += 1
                return
            msg = decode_sequenced(topic, payload)
        except WireError as err:
            stats.refused[err.reason] += 1
            return
        gw = msg.gw
        if not self.tracker.first_time(gw, msg.seq):
            stats.duplicates += 1
            return
        if isinstance(msg, DropRecord):
            stats.drop_records += 1
            self.tracker.seen_ranges(gw, msg.ranges)
            return
        dev = msg.dev
        device = self.registry.get(dev)
        if device is None or device.gateway != gw:
            self.stray(dev, device)
            return
        self.last_ts[dev] = ts = msg.ts
        if isinstance(msg, DataMessage):
            stats.data += 1
            stats.readings += len(msg.values)
            if self.single is not None:  # the usual case: one engine, no loop around it
                if out := self.single.on_data(msg, device):
                    self.steps[0].extend(Step(t, rt, ts) for t in out)
                return
            for i, engine in enumerate(self.engines):
                if out := engine.on_data(msg, device):
                    self.steps[i].extend(Step(t, rt, ts) for t in out)
        else:
            stats.events += 1
            for i, engine in enumerate(self.engines):
                if out := engine.on_event(msg, device):
                    self.steps[i].extend(Step(t, rt, ts) for t in out)


def _on_delay(engine: Engine, t: Transition, registry: dict[str, DeviceInfo]) -> float:
    device = registry.get(t.device) if t.device else None
    ruleset = engine.ruleset
    rules = ruleset.device_rules(device) if device else ruleset.gateway_rules(t.gateway)
    return next((r.for_s for r in rules if r.id == t.rule_id), 0.0)


def replay(  # noqa: PLR0917
    reader: RecordingReader,
    engines: Sequence[Engine],
    registry: dict[str, DeviceInfo],
    progress: Callable[[Progress], None] | None = None,
    speed: float | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> ReplayRun:
    """Run every message of *reader* through each engine; return their transitions.

    With *speed*, receive times are paced to the wall clock (rt / speed); *on_step* sees
    each transition of the first engine as it is decided. Without either, as fast as it goes.
    """
    loop = _Loop(engines, registry)
    stats = loop.stats
    started = time.perf_counter()
    paced = speed is not None or on_step is not None
    feed = _paced(loop, speed, on_step) if paced else _unpaced(loop)
    with contextlib.nullcontext() if paced else _collector_paused():
        _feed_all(reader, loop, feed, progress)
    if stats.last_rt is not None:
        done = len(loop.steps[0])
        loop.advance(stats.last_rt)
        for step in loop.steps[0][done:] if on_step else ():
            on_step(step)  # type: ignore[misc]
    if progress is not None:
        progress(Progress(reader.stats.compressed_read, reader.size, stats.lines, stats.readings))
    return ReplayRun(loop.steps, stats, time.perf_counter() - started)


def replay_part(  # noqa: PLR0917 - one part's inputs
    reader: RecordingReader,
    engines: Sequence[Engine],
    registry: dict[str, DeviceInfo],
    part_of: Callable[[str], int],
    me: int,
    progress: Callable[[Progress], None] | None = None,
) -> tuple[ReplayRun, list[list[MergeKey]]]:
    """One part of a replay split by gateway (replay.parallel): the steps and their keys.

    Every line is read, but only those with ``part_of(topic) == me`` reach the engines; the
    clock ticks at the same lines as a whole replay's, so a timer fires at the same ``rt``.
    """
    loop = _Loop(engines, registry)
    stats = loop.stats
    started = time.perf_counter()
    with _collector_paused():
        _feed_all(reader, loop, _unpaced(loop, part_of, me), progress)
    if stats.last_rt is not None:
        loop.advance(stats.last_rt, stats.lines + 2)  # after every line (line 1: the header)
    return ReplayRun(loop.steps, stats, time.perf_counter() - started), loop.keys


def _feed_all(
    reader: RecordingReader,
    loop: _Loop,
    feed: Callable[[list[Entry]], None],
    progress: Callable[[Progress], None] | None,
) -> None:
    stats = loop.stats
    shown = time.perf_counter()
    for chunk in reader.chunks():
        if chunk and stats.first_rt is None:
            stats.first_rt = chunk[0].rt
        feed(chunk)
        stats.lines += len(chunk)
        if chunk:
            stats.last_rt = chunk[-1].rt
        if progress is not None and (now := time.perf_counter()) - shown >= PROGRESS_EVERY_S:
            shown = now
            progress(
                Progress(reader.stats.compressed_read, reader.size, stats.lines, stats.readings)
            )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No automatic garbage collection during an unpaced pass.

    The engines' state grows to millions of long-lived objects (conditions, windows, open
    alarms, the steps), and each full collection walks all of them again while finding almost
    nothing: the per-message garbage has no cycles and dies by reference counting. Measured on
    10,000 devices, collections took over a quarter of the pass. A paced replay can run for
    hours beside a display or a publisher, so it keeps the collector.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _unpaced(
    loop: _Loop, part_of: Callable[[str], int] | None = None, me: int = 0
) -> Callable[[list[Entry]], None]:
    """The pass as fast as it goes, over the whole stream or (with *part_of*) one part.

    The usual message — data on a data topic, one engine — is handled here in line: decoded
    once (``decode_vouched``), deduplicated, looked up and evaluated, with no call per message
    but the engine's. Anything else goes through ``_Loop.message`` as it came: the same
    decisions, a little slower. A part ticks its clock at every line, its own or not, and
    keys its steps for the merge (``_Loop.keys``).
    """
    handle, topics, registry, last_ts = loop.message, loop.topics, loop.registry, loop.last_ts
    first_time, stats, single = loop.tracker.first_time, loop.stats, loop.single
    steps, keys = loop.steps, loop.keys
    parts: dict[str, int] = {}  # topic → part
    line = 1  # the header

    def feed(chunk: list[Entry]) -> None:  # noqa: PLR0912 - one loop, its branches in line
        nonlocal line
        data = readings = 0
        for entry in chunk:
            line += 1
            name, rt = entry.topic, entry.rt
            if rt >= loop.next_advance:
                loop.advance(rt, None if part_of is None else line)
            if part_of is not None:
                part = parts.get(name)
                if part is None:
                    part = parts[name] = part_of(name)
                if part != me:
                    continue
            topic = topics.get(name)
            msg = None
            if single is not None and topic is not None and not entry.b64:
                # a Raw payload is a buffer: wire's decoders read it without a copy
                msg = decode_vouched(topic, entry.payload)
            if msg is None:
                handle(rt, name, entry.payload_bytes() if entry.b64 else entry.payload)
                if part_of is not None:
                    for i, engine_steps in enumerate(steps):
                        if n := len(engine_steps) - len(keys[i]):
                            keys[i].extend([(line, 1, 0.0, "")] * n)
                continue
            gw = msg.gw
            if not first_time(gw, msg.seq):
                stats.duplicates += 1
                continue
            dev = msg.dev
            device = registry.get(dev)
            if device is None or device.gateway != gw:
                loop.stray(dev, device)
                continue
            last_ts[dev] = ts = msg.ts
            data += 1
            readings += len(msg.values)
            if out := single.on_data(msg, device):  # type: ignore[union-attr]
                steps[0].extend(Step(t, rt, ts) for t in out)
                if part_of is not None:
                    keys[0].extend([(line, 1, 0.0, "")] * len(out))
        stats.data += data
        stats.readings += readings

    return feed


def _paced(
    loop: _Loop, speed: float | None, on_step: Callable[[Step], None] | None
) -> Callable[[list[Entry]], None]:
    origin: list[float] = []  # [first rt, wall clock then]
    steps = loop.steps[0]

    def feed(chunk: list[Entry]) -> None:
        for entry in chunk:
            if speed is not None:
                if not origin:
                    origin.extend((entry.rt, time.perf_counter()))
                ahead = origin[1] + (entry.rt - origin[0]) / speed - time.perf_counter()
                if ahead > PACE_SLACK_S:
                    time.sleep(ahead)
            done = len(steps)
            loop.message(entry.rt, entry.topic, entry.payload_bytes())
            if on_step is not None:
                for step in steps[done:]:
                    on_step(step)

    return feed


def is_raise(step: Step) -> bool:
    return step.transition.kind is TransitionKind.RAISE
