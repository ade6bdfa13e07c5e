"""Shared pieces of the lifecycle and escalation tests (no tests here).

``RankedDispatcher`` and ``RecordingSender`` are test doubles of the lifecycle's own
``Dispatcher`` and ``Sender`` protocols (the real ranking and channels are built elsewhere).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from cloud.database import open_database
from cloud.ingest.checkpoint import commit_checkpoint
from cloud.lifecycle import (
    AlarmView,
    DeliveryError,
    LifecycleConfig,
    OutboundMessage,
    StepRequest,
    Target,
    TargetKind,
)
from cloud.lifecycle.rule_alarms import AlarmChange, alarm_events
from cloud.lifecycle.tables import escalation_steps, lifecycle_alarms, outbox

CONFIG: dict[str, Any] = {
    "sla": {
        "info": {"ack_s": 600, "on_site_s": 600, "resolve_s": 3600},
        "warning": {"ack_s": 600, "on_site_s": 600, "resolve_s": 3600},
        "danger": {"ack_s": 600, "on_site_s": 600, "resolve_s": 3600},
        "critical": {"ack_s": 600, "on_site_s": 600, "resolve_s": 3600},
    },
    "fanout": {"critical": 2},
    "policies": {
        "standard": {
            "steps": [
                {"wait_s": 0, "target": "next_nearest"},
                {"wait_s": 600, "target": "next_nearest"},
                {"wait_s": 600, "target": "grid_supervisor"},
                {"wait_s": 600, "target": "duty_commander"},
            ]
        },
        "silent": {"steps": []},
    },
    "policy_by_severity": {
        "info": "silent",
        "warning": "standard",
        "danger": "standard",
        "critical": "standard",
    },
    "grouping": {"window_s": 3600},
    "outbox": {"channels": ["sms", "push"], "retries_per_channel": 3, "backoff_base_s": 0.05},
}


def config(**changes: Any) -> LifecycleConfig:
    """CONFIG with dotted-path overrides, e.g. ``{"grouping.window_s": 1}``."""
    data = json.loads(json.dumps(CONFIG))
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = data
        for p in parents:
            node = node[p]
        node[last] = value
    return LifecycleConfig.model_validate(data)


def write_config(path: Path, cfg: LifecycleConfig) -> Path:
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")), encoding="utf-8")
    return path


class RankedDispatcher:
    """Test double of Dispatcher: workers nearest first; fixed supervisor and commander."""

    def __init__(self, workers: Sequence[str], channels: tuple[str, ...] = ()) -> None:
        self.workers = list(workers)
        self.channels = channels
        self.calls: list[StepRequest] = []

    def targets(self, alarm: AlarmView, step: StepRequest) -> list[Target]:
        self.calls.append(step)
        if step.target is TargetKind.NEXT_NEAREST:
            free = [w for w in self.workers if w not in step.exclude]
            names = free[: step.count]
        elif step.target is TargetKind.GRID_SUPERVISOR:
            names = ["supervisor"]
        elif step.target is TargetKind.DUTY_COMMANDER:
            names = ["commander"]
        else:
            names = list(self.workers)
        return [Target(n, self.channels) for n in names]


class RecordingSender:
    """Test double of Sender that deduplicates by message id, as a provider does.

    ``fail(message) -> DeliveryError | None`` scripts failures.
    """

    def __init__(self, fail: Callable[[OutboundMessage], DeliveryError | None] = lambda m: None):
        self.fail = fail
        self.calls: list[tuple[OutboundMessage, float]] = []
        self.delivered: dict[str, OutboundMessage] = {}

    async def send(self, message: OutboundMessage) -> str | None:
        self.calls.append((message, time.monotonic()))
        err = self.fail(message)
        if err is not None:
            raise err
        self.delivered.setdefault(message.message_id, message)
        return f"rcpt-{message.message_id}"


def change(
    key: str,
    kind: str = "raise",
    *,
    severity: str = "critical",
    clears: str = "manual",
    device: str | None = None,
    notify: str = "page",
    category: str = "fire",
) -> AlarmChange:
    device = device or key.split("/", maxsplit=1)[0]
    return AlarmChange(
        kind=kind, key=key, rule_id=key.rsplit("/", maxsplit=1)[-1], device=device, gateway="gw-1",
        severity=severity, ts=time.time(), title_en="Suspected fire", title_zh="疑似火警",
        category=category, notify=notify, value=None, clears=clears, detail={},
    )  # fmt: skip


def commit(url: str, changes: Sequence[AlarmChange]) -> None:
    """Store rule transitions as ingest does (one checkpoint)."""
    db = open_database(url)
    try:
        commit_checkpoint(db, changes, {})
    finally:
        db.dispose()


def rows(url: str, query: sa.Select[Any]) -> list[Any]:
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            return list(conn.execute(query).all())
    finally:
        db.dispose()


def alarm_id(url: str, key: str) -> int:
    found = rows(url, sa.select(lifecycle_alarms.c.alarm_id).where(lifecycle_alarms.c.key == key))
    assert found, f"no lifecycle row for {key}"
    return int(found[-1][0])


def lifecycle_row(url: str, aid: int) -> Any:
    return rows(url, sa.select(lifecycle_alarms).where(lifecycle_alarms.c.alarm_id == aid))[0]


def steps_of(url: str, aid: int) -> list[Any]:
    q = sa.select(escalation_steps).where(escalation_steps.c.alarm_id == aid)
    return rows(url, q.order_by(escalation_steps.c.seq))


def outbox_rows(url: str) -> list[Any]:
    return rows(url, sa.select(outbox).order_by(outbox.c.created_at, outbox.c.id))


def events_of(url: str, aid: int, kind: str | None = None) -> list[Any]:
    q = sa.select(alarm_events).where(alarm_events.c.alarm_id == aid)
    if kind is not None:
        q = q.where(alarm_events.c.kind == kind)
    return rows(url, q.order_by(alarm_events.c.id))


T0 = 1_700_000_000.0  # the lifecycle tests' wall clock starts here


class Clock:
    """A settable wall clock for the lifecycle."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now
