"""5,000 alarms raised in 10 s through the lifecycle and the outbox (run by hand).

    python benchmarks/alarm_storm.py [--alarms 5000] [--seconds 10] [--workers 200]

A fast fake Sender; prints elapsed, messages sent, and the ratio against bare inserts of the
same number of alarm rows. Checks: every alarm has a lifecycle row, every alert is sent or
carried by a sent summary, no alarm missing from what the workers received.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from cloud.database import open_database
from cloud.ingest.checkpoint import commit_checkpoint
from cloud.lifecycle import (
    AlarmDesk,
    AlarmView,
    LifecycleConfig,
    OutboundMessage,
    StepRequest,
    Target,
)
from cloud.lifecycle.rule_alarms import AlarmChange, alarms
from cloud.lifecycle.tables import lifecycle_alarms, outbox


class NearestOf:
    """Stand-in Dispatcher: each grid's two nearest of *workers*."""

    def __init__(self, workers: int) -> None:
        self.workers = [f"w{i}" for i in range(workers)]

    def targets(self, alarm: AlarmView, step: StepRequest) -> list[Target]:
        start = hash(alarm.device) % len(self.workers)
        ring = self.workers[start:] + self.workers[:start]
        return [Target(w) for w in ring if w not in step.exclude][: step.count]


class FastSender:
    def __init__(self) -> None:
        self.delivered: dict[str, OutboundMessage] = {}

    async def send(self, message: OutboundMessage) -> str | None:
        self.delivered.setdefault(message.message_id, message)
        return None


CONFIG = {
    "sla": {s: {"ack_s": 120, "on_site_s": 900, "resolve_s": 3600}
            for s in ("info", "warning", "danger", "critical")},
    "fanout": {"critical": 2},
    "policies": {"fire": {"steps": [{"wait_s": 0, "target": "next_nearest"},
                                    {"wait_s": 120, "target": "next_nearest"}]}},
    "policy_by_severity": {s: "fire" for s in ("info", "warning", "danger", "critical")},
    "grouping": {"window_s": 2.0},
}  # fmt: skip


def change(i: int) -> AlarmChange:
    return AlarmChange("raise", f"smk-{i:05d}/smoke-fire", "smoke-fire", f"smk-{i:05d}", "gw-1",
                       "critical", time.time(), "Suspected fire", "疑似火警", "fire", "page", None,
                       "manual", {})  # fmt: skip


def bare_inserts(url: str, n: int) -> float:
    db = open_database(url)
    t0 = time.perf_counter()
    with db.begin() as conn:
        for i in range(n):
            c = change(i)
            conn.execute(sa.insert(alarms).values(
                key=c.key, rule_id=c.rule_id, device=c.device, gateway=c.gateway,
                severity=c.severity, state="open", title_en=c.title_en, title_zh=c.title_zh,
                clears=c.clears, confirmed=False, raised_ts=c.ts, updated_ts=c.ts))  # fmt: skip
    return time.perf_counter() - t0


async def storm(url: str, n: int, seconds: float, workers: int) -> None:
    db = open_database(url)
    sender = FastSender()
    cfg = LifecycleConfig.model_validate(CONFIG)
    batches = max(1, int(seconds / 0.5))  # ingest checkpoints every 0.5 s
    per = -(-n // batches)
    t0 = time.perf_counter()
    async with AlarmDesk(url, cfg, dispatcher=NearestOf(workers), sender=sender,
                         instance="bench") as desk:  # fmt: skip
        for b in range(batches):
            chunk = [change(i) for i in range(b * per, min(n, (b + 1) * per))]
            await asyncio.to_thread(commit_checkpoint, db, chunk, {})
            desk.on_changes(chunk)
            await asyncio.sleep(max(0.0, t0 + (b + 1) * seconds / batches - time.perf_counter()))
        raised = time.perf_counter() - t0
        while True:  # drained when every alert is sent or grouped into a sent summary
            with db.connect() as conn:
                states = dict(conn.execute(sa.select(outbox.c.state, sa.func.count())
                                           .group_by(outbox.c.state)).all())  # fmt: skip
                adopted = conn.execute(
                    sa.select(sa.func.count()).select_from(lifecycle_alarms)
                ).scalar()
            if adopted == n and set(states) <= {"sent", "grouped"}:
                break
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - t0
    carried = {a for m in sender.delivered.values() for a in m.alarm_ids}
    print(f"alarms raised: {n} in {raised:.2f} s; all handled after {elapsed:.2f} s")
    print(
        f"alert rows: {sum(states.values()) - states.get('sent', 0) + states.get('sent', 0)}"
        f" (grouped into summaries: {states.get('grouped', 0)}); "
        f"messages sent: {len(sender.delivered)}"
    )
    print(f"alarms carried by sent messages: {len(carried)} / {n} (lost: {n - len(carried)})")
    base = bare_inserts(url.replace(".db", "-bare.db"), n)
    print(
        f"baseline bare inserts of {n} alarm rows: {base:.3f} s; "
        f"drained {elapsed - raised:.2f} s after the last raise; "
        f"ratio elapsed / bare = {elapsed / base:.1f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alarms", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'cloud.db'}"
        asyncio.run(storm(url, args.alarms, args.seconds, args.workers))


if __name__ == "__main__":
    main()
