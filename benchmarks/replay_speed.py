"""Replay speed over a synthetic day of 10,000 devices (target >= 1,000,000 readings/s).

Run by hand:  python benchmarks/replay_speed.py [--file FLEET.gz] [--rounds 3] [--devices 10000]

Without --file, generates the fleet first (``gridalarm sim fleet --devices 10000 --hours 24``)
into a temporary folder and reports how long that took. Each round then times, in-process:

- baseline: read + inflate + decode every line and every payload with wire's decoders (the
  floor any replay pays, no engine);
- replay:   ``replay --speed max`` as the CLI runs it (dedup, registry, the library rule set,
  the report built in memory).

Prints the median readings/s of each over the rounds and the replay/baseline ratio, the
replay's process CPU time per message (both threads: inflating and the rest) and the peak RSS.
On a shared machine the CPU figure moves less than the wall clock.
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


def one_replay(path: Path) -> tuple[int, float, int, float]:
    """(readings, wall s, alarms, process CPU µs per message) of one replay."""
    started, cpu = time.perf_counter(), time.process_time()
    outcome = run_replay(ReplayOptions(path))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
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
        base, full, cpus = [], [], []
        for r in range(args.rounds):
            n, secs = baseline(path)
            base.append(n / secs)
            n2, secs2, alarms, cpu_us = one_replay(path)
            full.append(n2 / secs2)
            cpus.append(cpu_us)
            print(
                f"round {r + 1}: baseline {n:,} readings in {secs:.2f} s ({n / secs:,.0f}/s); "
                f"replay {n2:,} readings in {secs2:.2f} s ({n2 / secs2:,.0f}/s), {alarms} alarms, "
                f"CPU {cpu_us:.2f} µs/message"
            )
        b, f = statistics.median(base), statistics.median(full)
        print(
            f"median: baseline {b:,.0f} readings/s, replay {f:,.0f} readings/s "
            f"(ratio {f / b:.2f}); target {TARGET:,}: {'MET' if f >= TARGET else 'NOT MET'}"
        )
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(
            f"replay CPU {statistics.median(cpus):.2f} µs/message (median); peak RSS {rss_mb:.0f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
