"""What the engine decides: severities, transition kinds, transitions and open alarms."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from rules.meaning import Category, Notify

_RANK = {"info": 0, "warning": 1, "danger": 2, "critical": 3}


class Severity(enum.StrEnum):
    """How bad an alarm is; ordered info < warning < danger < critical (by ``rank``)."""

    INFO = "info"
    WARNING = "warning"
    DANGER = "danger"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self.value]

    # str's lexical order would put "critical" first; compare by rank between severities
    def __lt__(self, other: object) -> bool:
        if isinstance(other, Severity):
            return self.rank < other.rank
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, Severity):
            return self.rank <= other.rank
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, Severity):
            return self.rank > other.rank
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, Severity):
            return self.rank >= other.rank
        return NotImplemented


SEVERITIES = tuple(Severity)  # index == rank


class TransitionKind(enum.StrEnum):
    """What happened to the alarm of one key."""

    RAISE = "raise"  # a new open alarm
    UPGRADE = "upgrade"  # the open alarm got worse
    DOWNGRADE = "downgrade"  # the open alarm improved (auto-clearing rules only)
    CLEAR = "clear"  # the sensor says it is over (auto-clearing rules only)
    CONFIRM = "confirm"  # correlated with other alarms (e.g. a second smoke detector)
    RECORD = "record"  # noted, never dispatched (test button; a manual alarm's condition ended)
    SUPPRESSED = "suppressed"  # would have been dispatched; silenced (maintenance / inhibited)


class Clears(enum.StrEnum):
    """Who closes an alarm: the sensor (auto) or a person (manual)."""

    AUTO = "auto"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class Transition:
    """One decision of the engine, at event time ``ts``."""

    kind: TransitionKind
    key: str  # f"{device or gateway}/{rule_id}": one open alarm per key
    rule_id: str
    device: str | None
    gateway: str
    severity: Severity
    ts: float
    title_en: str
    title_zh: str
    category: Category  # what it is about; a CONFIRM carries its correlation's
    notify: Notify  # how urgently people are told (the rule's, or the correlation's)
    value: float | None
    clears: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OpenAlarm:
    """An alarm the engine holds open (for manual rules: until ``Engine.close``)."""

    key: str
    rule_id: str
    device: str | None
    gateway: str
    severity: Severity
    since: float
    confirmed: bool
