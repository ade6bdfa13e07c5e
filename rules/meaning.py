"""What an alarm means to people: its category and how urgently they are told.

Every rule and correlation declares both (or takes its file's defaults); nothing downstream
guesses them from a rule id. The words people read are the rule's own ``title_en`` /
``title_zh``; the category says what family of trouble those words belong to.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Category(enum.StrEnum):
    """What an alarm is about. Small on purpose: a new rule fits one or the set is wrong."""

    FIRE = "fire"
    """A fire or its signs: smoke, heat, heat rising, a confirmed fire."""
    FLOOD = "flood"
    """Water on the street: level, rising water, heavy rain at a flood-prone point."""
    MANHOLE = "manhole"
    """A manhole cover open, tilted or loose, or its well filling with water."""
    EBIKE = "ebike"
    """E-bikes taken into lift cars, and the lift door held open by it."""
    DEVICE_FAULT = "device_fault"
    """A device that cannot do its job: fault, battery, removed, silent, poor radio."""
    GATEWAY = "gateway"
    """A gateway offline: every device behind it is unwatched."""
    TEST = "test"
    """A test press or commissioning check: for the maintenance log only."""
    REPORT = "report"
    """A hazard a grid worker found and reported: a blocked fire exit, e-bikes charging
    indoors, a damaged manhole cover, flooding (no rule raises these; people do)."""


class Notify(enum.StrEnum):
    """How urgently people are told of a raised alarm."""

    PAGE = "page"
    """At once: SMS / push to the on-duty worker, escalating if nobody takes it."""
    SUMMARY = "summary"
    """No alert of its own: it goes into the worker's next grouped summary."""
    BOARD = "board"
    """Only shown on the alarm board; nobody is messaged and nothing escalates."""

    @property
    def urgency(self) -> int:
        """board 0 < summary 1 < page 2: a confirmation may make an alarm more urgent."""
        return _URGENCY[self.value]

    def less_urgent(self) -> tuple[Notify, ...]:
        """The values below this one (what a confirmation with this notify lifts)."""
        return tuple(n for n in Notify if n.urgency < self.urgency)


_URGENCY = {"board": 0, "summary": 1, "page": 2}


RULE_CATEGORIES = tuple(c for c in Category if c is not Category.REPORT)
"""What a rule may declare: ``report`` is for people's hazard reports only."""


def choices(values: Iterable[enum.StrEnum]) -> str:
    """``fire, flood, …``: the values a YAML field accepts, for error messages."""
    return ", ".join(m.value for m in values)


def rule_category(value: Category) -> Category:
    """A rule's category: any but ``report`` (ValueError names the ones it may be)."""
    if value is Category.REPORT:
        raise ValueError(f"report is for workers' hazard reports; a rule is one of: "
                         f"{choices(RULE_CATEGORIES)}")  # fmt: skip
    return value
