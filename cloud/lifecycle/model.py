"""What the lifecycle works with: states, outcomes, targets, the views handed to protocols."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rules.meaning import Category, Notify


class State(enum.StrEnum):
    """Where an alarm stands; ``escalated`` may repeat between notified and acknowledged."""

    RAISED = "raised"
    NOTIFIED = "notified"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    ON_SITE = "on_site"
    RESOLVED = "resolved"


OPEN_STATES = frozenset(State) - {State.RESOLVED}
WAITING_STATES = frozenset({State.RAISED, State.NOTIFIED, State.ESCALATED})  # chain runs


class Outcome(enum.StrEnum):
    """How a resolved alarm ended."""

    REAL = "real"
    FALSE_ALARM = "false_alarm"
    DEVICE_FAULT = "device_fault"
    TEST = "test"


class FeedStep(enum.StrEnum):
    """What happened to an alarm that outside systems (the fire brigade) are told of, once each."""

    RAISED = "raised"  # forwarded at once, unverified
    CONFIRMED = "confirmed"  # a second detector (a correlation) confirmed it
    ACKNOWLEDGED = "acknowledged"  # a grid worker took it and is on the way
    ON_SITE = "on_site"  # the grid worker is there
    VERIFIED = "verified"  # the grid worker on site confirmed it is real
    KEY_HOLDER = "key_holder"  # our side reached the owner or key holder of the premises
    FALSE_ALARM = "false_alarm"  # resolved as a false alarm: a Cancel
    RESOLVED = "resolved"  # resolved otherwise (real, device fault, test, cleared)


class TargetKind(enum.StrEnum):
    """Whom an escalation step reaches."""

    NEXT_NEAREST = "next_nearest"
    GRID_SUPERVISOR = "grid_supervisor"
    DUTY_COMMANDER = "duty_commander"
    COMMUNITY_ALL = "community_all"


class OutboxState(enum.StrEnum):
    """A notification's way out; ``held`` waits for its worker's summary (grouping)."""

    HELD = "held"
    GROUPED = "grouped"  # carried by the summary named in summary_id
    PENDING = "pending"
    SENDING = "sending"  # committed before the call: after a crash, outcome unknown
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class AlarmView:
    """An alarm as the lifecycle sees it (what a Dispatcher or Renderer gets)."""

    alarm_id: int
    key: str
    rule_id: str
    device: str | None
    gateway: str
    severity: str
    title_en: str
    title_zh: str
    category: Category | None  # None: raised before rules declared one
    notify: Notify
    clears: str
    state: State
    raised_at: float


@dataclass(frozen=True, slots=True)
class StepRequest:
    """One escalation step asking a Dispatcher for targets."""

    seq: int  # how many steps this alarm has run before this one
    index: int  # position in the policy's step list
    target: TargetKind
    count: int  # fan-out for next_nearest (by severity); others ignore it
    exclude: frozenset[str]  # workers already notified of this alarm


@dataclass(frozen=True, slots=True)
class Target:
    """A person to notify, with the channels to try in order (empty: the configured default)."""

    worker_id: str
    channels: tuple[str, ...] = ()
    locale: str = "zh-CN"


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    link: str


class NoticeKind(enum.StrEnum):
    """What a notice tells the people on an alarm (the Renderer words each kind)."""

    BRIGADE_STATUS = "brigade_status"  # the fire brigade's own status (dispatched, ETA)
    BRIGADE_REQUEST = "brigade_request"  # the fire brigade asks something of us
    REPORT_CLOSED = "report_closed"  # the worker's own hazard report was resolved


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the people on an alarm are told that is not the alarm itself."""

    kind: NoticeKind
    source: str  # who says it, as people know them (the brigade's name)
    status: str = ""  # for BRIGADE_STATUS: received, dispatched, en_route, on_scene, closed
    eta_s: int | None = None  # their estimated time of arrival, seconds from now
    text: str = ""  # their own words (a request), passed through


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message for a Sender. ``message_id`` is the idempotency key: resending it after a
    crash (outcome unknown) must not reach the person twice — the provider dedups by it."""

    message_id: str
    worker_id: str
    channel: str
    text: str
    link: str
    alarm_ids: tuple[int, ...]
    attempt: int


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What a person's action did; ``changed`` is False for a repeat (and ``detail`` says so)."""

    alarm_id: int
    state: State
    changed: bool
    detail: str
