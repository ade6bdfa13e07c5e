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

The calling process runs part 0 itself; each other part is a ``python -m replay.parallel``
of its own that gets its job on stdin and sends its steps back on stdout.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
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
    size: int  # bytes of the file the calling process reads: a growing recording stays one


_Result = tuple[list[list[Step]], list[list[MergeKey]], ReplayStats, str]  # str: sha256 read
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)  # where `replay` imports from


def _serve() -> int:
    """A part's process (``python -m replay.parallel``): a ``_Job`` pickled on stdin; pickled
    ``("progress", readings)`` frames, then ``("ok", (steps, keys, stats))`` or
    ``("error", why)`` on stdout. Nothing else may reach that stream: fd 1 is pointed at
    stderr for the rest of the process. Ctrl-C is the parent's to handle (it ends us)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)

    def send(frame: tuple[str, Any]) -> None:
        pickle.dump(frame, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    try:
        job: _Job = pickle.load(sys.stdin.buffer)  # noqa: S301 - from the parent replay
        engines = [Engine(parse_ruleset(texts)) for texts in job.rules]
        threaded = inflate_aside(job.plan.parts)
        with RecordingReader(job.path, threaded, job.size) as reader:
            run, keys = replay_part(
                reader,
                engines,
                job.registry,
                job.plan.part_of,
                job.me,
                lambda p: send(("progress", p.readings)),
            )
        send(("ok", (run.steps, keys, run.stats, reader.stats.sha256)))
    except ReplayError as err:  # the file, the rules: said in a line, like in one process
        send(("error", str(err)))
    except Exception:  # noqa: BLE001 - everything goes back to the parent, named
        send(("error", traceback.format_exc()))
    return 0


class _Part:
    """A part's process, and a thread that hands it its job and reads what it sends back.

    A plain ``python -m replay.parallel`` (not multiprocessing): nothing of the caller's
    ``__main__`` is run again, so a script without a main guard, ``python -`` or a notebook
    replays as well as the CLI does.
    """

    def __init__(self, job: _Job) -> None:
        self.name = f"replay part {job.me}"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (_PACKAGE_ROOT, env.get("PYTHONPATH"))))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "replay.parallel"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.readings = 0
        self.answer: tuple[str, Any] | None = None
        self._thread = threading.Thread(target=self._talk, args=(job,), name=self.name)
        self._thread.start()

    def _talk(self, job: _Job) -> None:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None  # both are pipes
        with contextlib.suppress(OSError):  # it died first: the exit code says so below
            pickle.dump(job, stdin, protocol=pickle.HIGHEST_PROTOCOL)
            stdin.close()
        with contextlib.suppress(EOFError, OSError, pickle.UnpicklingError):
            while True:
                kind, payload = pickle.load(stdout)  # noqa: S301 - our own child's frames
                if kind != "progress":
                    self.answer = (kind, payload)
                    return
                self.readings = payload

    def result(self) -> _Result:
        """Its steps, keys and stats once it is done; ReplayError if it failed or died."""
        self._thread.join()
        code = self.proc.wait()
        if self.answer is None:
            raise ReplayError(f"{self.name} ended without an answer (exit code {code})")
        kind, payload = self.answer
        if kind != "ok":
            raise ReplayError(f"{self.name} failed: {payload}")
        return payload  # type: ignore[no-any-return]

    def end(self) -> None:
        """Stop it if it still runs (the replay failed or was interrupted) and clean up."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._thread.join()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


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
    parts: list[_Part] = []
    try:
        texts = [dict(t) for t in rules]
        for me in range(1, the_plan.parts):
            parts.append(_Part(_Job(reader.path, texts, registry, the_plan, me, reader.size)))

        def progress_all(p: Progress) -> None:
            p.readings += sum(part.readings for part in parts)
            progress(p)  # type: ignore[misc]

        run, keys = replay_part(
            reader,
            engines,
            registry,
            the_plan.part_of,
            0,
            progress_all if progress is not None else None,
        )
        results: list[_Result] = [(run.steps, keys, run.stats, reader.stats.sha256)]
        results.extend(part.result() for part in parts)
    finally:
        for part in parts:
            part.end()
    if any(r[3] != reader.stats.sha256 for r in results):
        raise ReplayError(f"{reader.path}: the file changed while it was replayed; run it again")
    steps = [_merge([(r[0][i], r[1][i]) for r in results]) for i in range(len(engines))]
    stats = _combine([r[2] for r in results])
    if progress is not None:
        progress(Progress(reader.stats.compressed_read, reader.size, stats.lines, stats.readings))
    return ReplayRun(steps, stats, time.perf_counter() - started)


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


if __name__ == "__main__":
    sys.exit(_serve())
