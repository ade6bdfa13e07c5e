"""Micro-benchmark of the rules engine (run by hand): readings per second through ``on_data``.

Synthetic stream: 200,000 data messages from 10,000 devices of the four types (smoke 8 values,
ebike 5, manhole 8, flood 4 per message), spread over one day of event time, with the shipped
library rule set; ~1 % of the readings cross a threshold so alarms are raised and cleared.
Messages are built beforehand (decoding is not measured). Each round starts a fresh engine
(so learning 10,000 devices is included) and calls ``engine.advance(msg.ts)`` after every message,
as replay does.

Baseline: the same loop over the same prebuilt messages that only iterates each message's
values (``for name, v in msg.values.items(): pass``) - the floor of any pure-Python consumer.
The ratio says how many times that floor the engine costs.

    python benchmarks/rules_engine.py [--messages N] [--devices N] [--rounds N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from rules import DeviceInfo, Engine, library_texts, parse_ruleset
from wire.messages import DataMessage

TYPES = ("smoke", "ebike", "manhole", "flood")


def _values(kind: str, rnd: random.Random, hot: bool) -> dict[str, float | int | bool]:
    if kind == "smoke":
        return {
            "alarm": False, "fault": False, "test": False, "low_battery": False, "tamper": False,
            "obscuration_pct_per_m": round(rnd.uniform(2.0, 3.0) if hot else rnd.uniform(0, 0.3), 2),
            "temperature_c": round(rnd.uniform(20, 28), 1),
            "battery_mv": rnd.randint(2900, 3100),
        }  # fmt: skip
    if kind == "ebike":
        return {
            "ebike_present": hot, "door_held": False, "camera_fault": False,
            "detections": rnd.randint(0, 50), "last_detection_ts": 1_700_000_000,
        }  # fmt: skip
    if kind == "manhole":
        return {
            "displaced": False, "tilt_alarm": False, "water_alarm": False, "low_battery": False,
            "tilt_deg": round(rnd.uniform(9, 12) if hot else rnd.uniform(0, 2), 1),
            "water_level_mm": rnd.randint(0, 400 if hot else 100),
            "battery_mv": rnd.randint(3400, 3600), "signal_dbm": rnd.randint(-100, -70),
        }  # fmt: skip
    return {
        "sensor_fault": False, "level_alarm": False,
        "level_mm": round(rnd.uniform(120, 350) if hot else rnd.uniform(0, 40), 1),
        "rain_mm_h": round(rnd.uniform(0, 30 if hot else 5), 1),
    }  # fmt: skip


def build(
    messages: int, devices: int, seed: int = 7
) -> tuple[list[DataMessage], dict[str, DeviceInfo]]:
    rnd = random.Random(seed)
    infos = {}
    for n in range(devices):
        kind = TYPES[n % 4]
        dev = f"{kind[:2]}-{n:05d}"
        infos[dev] = DeviceInfo(
            dev, f"gw-{n // 100:03d}", kind, grid=f"g-{n // 500}", building=f"b-{n // 20}",
            heartbeat_s=3600.0,  # 20 reports a day each: hourly heartbeat, so deadman stays quiet
        )  # fmt: skip
    ids = list(infos)
    t0, span = 1_700_000_000.0, 86_400.0
    msgs = []
    for i in range(messages):
        dev = ids[i % devices]  # round robin: every device reports every ~devices/messages*day
        info = infos[dev]
        hot = rnd.random() < 0.01
        msgs.append(
            DataMessage(
                gw=info.gateway,
                dev=dev,
                seq=i + 1,
                ts=t0 + span * i / messages,
                values=_values(info.type, rnd, hot),
            )
        )
    return msgs, infos


def run_engine(msgs: list[DataMessage], infos: dict[str, DeviceInfo]) -> tuple[float, int, int]:
    engine = Engine(parse_ruleset(library_texts()))
    on_data, advance = engine.on_data, engine.advance
    transitions = 0
    start = time.perf_counter()
    for msg in msgs:
        transitions += len(on_data(msg, infos[msg.dev]))
        transitions += len(advance(msg.ts))
    return time.perf_counter() - start, engine.stats["readings"], transitions


def run_baseline(msgs: list[DataMessage]) -> float:
    start = time.perf_counter()
    for msg in msgs:
        for _name, _v in msg.values.items():
            pass
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    msgs, infos = build(args.messages, args.devices)
    readings = sum(len(m.values) for m in msgs)
    engine_s, base_s = [], []
    for _ in range(args.rounds):
        secs, counted, transitions = run_engine(msgs, infos)
        engine_s.append(secs)
        base_s.append(run_baseline(msgs))
    e, b = statistics.median(engine_s), statistics.median(base_s)
    print(f"{len(msgs):,} messages, {readings:,} readings, {len(infos):,} devices, "
          f"{transitions:,} transitions per round (counted readings {counted:,})")  # fmt: skip
    print(
        f"engine:   {readings / e:>12,.0f} readings/s  {len(msgs) / e:>10,.0f} messages/s  (median of {args.rounds})"
    )
    print(f"baseline: {readings / b:>12,.0f} readings/s  (iterate values only)")
    print(f"ratio engine/baseline time: {e / b:.1f}x   target >= 250,000 readings/s: "
          f"{'met' if readings / e >= 250_000 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
