"""Replaying on several cores: the recording split by gateway, one process per part.

What the engine decides about a device depends on that device's messages, on its gateway's
statuses (gateway rules; deadmen that wait for their gateway) and, through correlation rules,
on the alarms of other devices in its building. So a part is a set of whole groups of
gateways joined by buildings (a building with devices on two gateways joins them), the groups
balanced by device count; deduplication by (gateway, seq) stays whole with its gateway. Every
process reads and inflates the whole file — the cheap part — hands only its gateways'
messages to its engines, and ticks their clocks at the same lines a single process would, so
each timer fires at the same receive time. The steps come back keyed by (line, tick before
the line or the line itself, the timer's due time and key) and are merged in the order one
engine holding every device would have produced them: the report is byte for byte the one
``--jobs 1`` writes (tests/replay/test_replay_parallel.py).

The calling process runs part 0 itself; the others are spawned (not forked: the caller may
have threads) and send their steps back through a pipe.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import time
import traceback
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from multiprocessing.connection import Connection
from operator import itemgetter
from pathlib import Path
from typing import Any

from replay.errors import ReplayError
from replay.reader import RecordingReader
from replay.replay import MergeKey, Progress, ReplayRun, ReplayStats, Step, replay_part
from rules import DeviceInfo, Engine, parse_ruleset
from wire import WireError
from wire.topics import parse_topic

MIN_BYTES = 16 << 20  # smaller recordings replay faster in one process than spawning more


def cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_jobs(path: Path) -> int:
    """Processes worth using for *path*: one per core for a big recording, else one."""
    try:
        big = path.stat().st_size >= MIN_BYTES
    except OSError:
        big = False
    return cores() if big else 1


def inflate_aside(jobs: int) -> bool:
    """Whether each of *jobs* processes should inflate in a thread of its own: only with a
    core to spare for it. Without, the thread's hand-overs cost ~20 % more CPU for reading
    than inflating in line (measured: 2.07 s against 1.69 s for the 10,000-device day)."""
    return jobs * 2 <= cores() or jobs == 1


@dataclass(frozen=True, slots=True)
class Plan:
    """Which part each registered gateway's messages go to."""

    parts: int
    gateways: dict[str, int]

    def part_of(self, topic: str) -> int:
        """The part a topic's messages belong to; an unregistered gateway's by a fixed hash,
        a topic that is not ours to part 0 (which counts it as refused)."""
        try:
            gateway = parse_topic(topic).gateway
        except WireError:
            return 0
        part = self.gateways.get(gateway)
        if part is None:
            part = zlib.crc32(gateway.encode()) % self.parts
        return part


def plan(registry: Mapping[str, DeviceInfo], jobs: int) -> Plan:
    """Split the registry's gateways into at most *jobs* parts of whole building groups."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while (up := parent.setdefault(x, x)) != x:
            parent[x] = parent.setdefault(up, up)
            x = up
        return x

    for d in registry.values():
        a = root(f"g:{d.gateway}")
        if d.building:  # blank: no building, nothing to correlate
            b = root(f"b:{d.building}")
            if a != b:
                parent[b] = a
    size: dict[str, int] = {}
    for d in registry.values():
        r = root(f"g:{d.gateway}")
        size[r] = size.get(r, 0) + 1
    groups = sorted(size, key=lambda r: (-size[r], r))  # biggest first, then by name
    parts = max(1, min(jobs, len(groups)))
    load = [0] * parts
    part_of_root: dict[str, int] = {}
    for r in groups:
        part = part_of_root[r] = load.index(min(load))
        load[part] += size[r]
    gateways = {d.gateway: part_of_root[root(f"g:{d.gateway}")] for d in registry.values()}
    return Plan(parts, gateways)


@dataclass(frozen=True, slots=True)
class _Job:
    path: Path
    rules: list[dict[str, str]]  # per engine: the rule files' texts
    registry: dict[str, DeviceInfo]
    plan: Plan
    me: int


_Result = tuple[list[list[Step]], list[list[MergeKey]], ReplayStats]


def _child(job: _Job, conn: Connection, readings: Any) -> None:
    """A spawned part: replay it, send (steps, keys, stats) or the error back."""
    try:
        engines = [Engine(parse_ruleset(texts)) for texts in job.rules]

        def progress(p: Progress) -> None:
            readings[job.me] = p.readings

        with RecordingReader(job.path, threaded=inflate_aside(job.plan.parts)) as reader:
            run, keys = replay_part(
                reader, engines, job.registry, job.plan.part_of, job.me, progress
            )
        readings[job.me] = run.stats.readings
        conn.send(("ok", (run.steps, keys, run.stats)))
    except ReplayError as err:  # the file, the rules: said in a line, like in one process
        conn.send(("error", str(err)))
    except BaseException:  # noqa: BLE001 - everything goes back to the parent, named
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def replay_parallel(  # noqa: PLR0917 - one replay's inputs
    reader: RecordingReader,
    engines: Sequence[Engine],
    rules: Sequence[Mapping[str, str]],
    registry: dict[str, DeviceInfo],
    the_plan: Plan,
    progress: Callable[[Progress], None] | None = None,
) -> ReplayRun:
    """A replay of *reader* in ``the_plan.parts`` processes (this one runs part 0).

    *engines* are this process's, built from *rules* (per engine, its files' texts), which
    the other processes build theirs from.
    """
    started = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    readings = ctx.Array("q", the_plan.parts, lock=False)
    children = []
    try:
        for me in range(1, the_plan.parts):
            job = _Job(reader.path, [dict(t) for t in rules], registry, the_plan, me)
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_child, args=(job, send, readings), name=f"replay part {me}", daemon=True
            )
            proc.start()
            send.close()
            children.append((proc, receive))

        def progress_all(p: Progress) -> None:
            readings[0] = p.readings
            p.readings = sum(readings)
            progress(p)  # type: ignore[misc]

        run, keys = replay_part(
            reader,
            engines,
            registry,
            the_plan.part_of,
            0,
            progress_all if progress is not None else None,
        )
        results: list[_Result] = [(run.steps, keys, run.stats)]
        results.extend(_receive(proc, receive) for proc, receive in children)
    finally:
        for proc, receive in children:
            receive.close()
            if proc.is_alive():
                proc.terminate()
            proc.join()
    steps = [_merge([(r[0][i], r[1][i]) for r in results]) for i in range(len(engines))]
    stats = _combine([r[2] for r in results])
    if progress is not None:
        progress(Progress(reader.stats.compressed_read, reader.size, stats.lines, stats.readings))
    return ReplayRun(steps, stats, time.perf_counter() - started)


def _receive(proc: multiprocessing.process.BaseProcess, conn: Connection) -> _Result:
    try:
        status, payload = conn.recv()
    except EOFError:
        proc.join()
        raise ReplayError(
            f"{proc.name} ended without an answer (exit code {proc.exitcode})"
        ) from None
    if status != "ok":
        raise ReplayError(f"{proc.name} failed: {payload}")
    return payload  # type: ignore[no-any-return]


def _merge(parts: Sequence[tuple[list[Step], list[MergeKey]]]) -> list[Step]:
    """One list in single-engine order: by line; at a tick, by the next timer each part fires."""
    if len(parts) == 1:
        return parts[0][0]
    streams = [zip(keys, steps, strict=True) for steps, keys in parts]
    return [step for _, step in heapq.merge(*streams, key=itemgetter(0))]


# the counts that add up over parts (each part read every line: lines are each part's)
_SUMMED = tuple(f.name for f in fields(ReplayStats) if f.type == "int" and f.name != "lines")


def _combine(parts: Sequence[ReplayStats]) -> ReplayStats:
    """Every part read every line (lines, first and last rt are each part's); the rest adds."""
    first = parts[0]
    out = ReplayStats(lines=first.lines, first_rt=first.first_rt, last_rt=first.last_rt)
    for s in parts:
        for name in _SUMMED:
            setattr(out, name, getattr(out, name) + getattr(s, name))
        out.refused.update(s.refused)
        out.unknown_devices |= s.unknown_devices
    return out
