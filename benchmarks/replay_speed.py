"""Replay speed over a synthetic day of 10,000 devices (target >= 1,000,000 readings/s).

Run by hand:  python benchmarks/replay_speed.py [--file FLEET.gz] [--rounds 3] [--devices 10000]
                                                [--jobs N]

Without --file, generates the fleet first (``gridalarm sim fleet --devices 10000 --hours 24``)
into a temporary folder and reports how long that took. Each round then times, in-process:

- baseline: read + inflate + decode every line and every payload with wire's decoders (the
  floor any replay pays in one process, no engine);
- replay 1: ``replay --speed max --jobs 1`` as the CLI runs it (dedup, registry, the library
  rule set, the report built in memory), one process;
- replay N: the same with ``--jobs N`` (default: this machine's cores; replay.parallel), the
  whole run from opening the file to the merged report, spawned processes included.

Prints the median readings/s of each over the rounds and their ratios, CPU time per message
(all threads and processes of the replay) and the peak RSS of this process and of the largest
spawned one. On a shared machine the CPU figure moves less than the wall clock.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from replay.fleet import FleetOptions, generate_fleet
from replay.parallel import cores
from replay.reader import RecordingReader
from replay.session import ReplayOptions, run_replay
from wire import DataMessage, decode_sequenced, decode_status
from wire.topics import parse_topic

TARGET = 1_000_000


def baseline(path: Path) -> tuple[int, float]:
    """Readings decoded per second with no engine: the cost of reading the file."""
    started = time.perf_counter()
    readings = 0
    topics: dict[str, object] = {}
    with RecordingReader(path) as reader:
        for chunk in reader.chunks():
            for e in chunk:
                t = topics.get(e.topic)
                if t is None:
                    t = topics[e.topic] = parse_topic(e.topic)
                if e.topic.endswith("/status"):
                    decode_status(t, e.payload)  # type: ignore[arg-type]
                    continue
                m = decode_sequenced(t, e.payload)  # type: ignore[arg-type]
                if isinstance(m, DataMessage):
                    readings += len(m.values)
    return readings, time.perf_counter() - started


def one_replay(path: Path, jobs: int) -> tuple[int, float, int, float]:
    """(readings, wall s, alarms, process CPU µs per message) of one replay."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started, cpu = time.perf_counter(), time.process_time()
    outcome = run_replay(ReplayOptions(path, jobs=jobs))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu += (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    stats = outcome.report["stats"]
    return (
        stats["readings"],
        elapsed,
        outcome.report["summary"]["alarms"],
        cpu / stats["lines"] * 1e6,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, help="an existing fleet recording to reuse")
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=cores(), help="processes of the parallel replay")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None:
            path = Path(tmp) / "fleet.jsonl.gz"
            started = time.perf_counter()
            s = generate_fleet(path, FleetOptions(devices=args.devices, hours=args.hours))
            print(
                f"generated {s.devices} devices x {args.hours:g} h: {s.messages:,} messages, "
                f"{s.readings:,} readings, {path.stat().st_size / 1e6:.0f} MB "
                f"in {time.perf_counter() - started:.1f} s"
            )
        base: list[float] = []
        rates: dict[int, list[float]] = {1: [], args.jobs: []}
        cpus: dict[int, list[float]] = {1: [], args.jobs: []}
        for r in range(args.rounds):
            n, secs = baseline(path)
            base.append(n / secs)
            line = f"round {r + 1}: baseline {n / secs:,.0f}/s"
            for jobs, rate in rates.items():
                n2, secs2, alarms, cpu_us = one_replay(path, jobs)
                rate.append(n2 / secs2)
                cpus[jobs].append(cpu_us)
                line += (
                    f"; replay --jobs {jobs}: {n2:,} readings in {secs2:.2f} s "
                    f"({n2 / secs2:,.0f}/s, {alarms} alarms, CPU {cpu_us:.2f} µs/message)"
                )
            print(line, flush=True)
        b = statistics.median(base)
        one, many = statistics.median(rates[1]), statistics.median(rates[args.jobs])
        print(f"median: baseline {b:,.0f} readings/s")
        for jobs, rate in rates.items():
            f = statistics.median(rate)
            print(
                f"median: replay --jobs {jobs} {f:,.0f} readings/s (ratio to baseline "
                f"{f / b:.2f}), CPU {statistics.median(cpus[jobs]):.2f} µs/message"
            )
        print(
            f"--jobs {args.jobs} / --jobs 1: {many / one:.2f}; target {TARGET:,} "
            f"(--jobs {args.jobs}): {'MET' if many >= TARGET else 'NOT MET'}"
        )
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        spawned = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS {own:.0f} MB (this process), {spawned:.0f} MB (largest spawned part)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
