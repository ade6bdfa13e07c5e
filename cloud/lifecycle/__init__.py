"""Alarm lifecycle: states and audit, SLA overdue, escalation on APScheduler, the outbox.

Wiring: ``AlarmDesk(db_url, load_config(path), dispatcher=..., sender=...,
renderer=..., close_rule_alarm=engine.close)``; ``ingest.on_changes = desk.on_changes``.
Several workers on one PostgreSQL add ``worker_id=<the worker's id>, sweep_s=5.0,
live_workers=<LiveWorkers>`` (see ``AlarmDesk``).
"""

from cloud.lifecycle.config import LifecycleConfig, load_config
from cloud.lifecycle.desk import AlarmDesk
from cloud.lifecycle.errors import (
    ConfigError,
    DeliveryError,
    IllegalTransition,
    LifecycleError,
    UnknownAlarm,
)
from cloud.lifecycle.lifecycle import Lifecycle
from cloud.lifecycle.model import (
    ActionResult,
    AlarmView,
    FeedStep,
    OutboundMessage,
    OutboxState,
    Outcome,
    Rendered,
    State,
    StepRequest,
    Target,
    TargetKind,
)
from cloud.lifecycle.plaintext import PlainRenderer
from cloud.lifecycle.protocols import AlarmFeed, CloseRuleAlarm, Dispatcher, Renderer, Sender
from cloud.lifecycle.reports import TITLES as HAZARD_TITLES
from cloud.lifecycle.reports import HazardKind, HazardReport

__all__ = [
    "HAZARD_TITLES",
    "ActionResult",
    "AlarmDesk",
    "AlarmFeed",
    "AlarmView",
    "CloseRuleAlarm",
    "ConfigError",
    "DeliveryError",
    "Dispatcher",
    "FeedStep",
    "HazardKind",
    "HazardReport",
    "IllegalTransition",
    "Lifecycle",
    "LifecycleConfig",
    "LifecycleError",
    "OutboundMessage",
    "OutboxState",
    "Outcome",
    "PlainRenderer",
    "Rendered",
    "Renderer",
    "Sender",
    "State",
    "StepRequest",
    "Target",
    "TargetKind",
    "UnknownAlarm",
    "load_config",
]
