"""Rules as the engine uses them: flat frozen dataclasses compiled from the YAML specs.

Levels are normalised so the engine compares one way: a rule that alarms *below* a value (or
on a *falling* rate) has its values and thresholds negated (``sign`` = -1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rules.meaning import Category, Notify
from rules.model import Clears, Severity
from rules.schema import (
    CorrelationSpec,
    CountSpec,
    DeadmanSpec,
    EventSpec,
    QualitySpec,
    RateSpec,
    RuleSpec,
    ThresholdSpec,
)


@dataclass(frozen=True, slots=True)
class Level:
    """One severity level; ``raise_at`` / ``clear_at`` as written in the YAML."""

    severity: Severity
    raise_at: float
    clear_at: float
    reason: str
    title_en: str
    title_zh: str


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule of any kind (fields a kind does not use keep their defaults)."""

    id: str
    kind: str
    title_en: str
    title_zh: str
    category: Category
    notify: Notify
    clears: Clears
    levels: tuple[Level, ...]
    raise_: tuple[float, ...]  # normalised (sign applied): raise when x >= raise_[i]
    clear: tuple[float, ...]  # normalised: level i ends when x < clear[i]
    sign: float = 1.0
    measurement: str = ""
    event: str = ""
    for_s: float = 0.0
    off_for_s: float = 0.0
    window_s: float = 0.0
    hold_s: float = 0.0
    factor: float = 0.0
    min_count: int = 0
    record_only: bool = False
    inhibits_deadman: bool = False

    @property
    def auto(self) -> bool:
        return self.clears is Clears.AUTO


@dataclass(frozen=True, slots=True)
class Correlation:
    """Alarms of ``rules`` on >= min_devices distinct devices of one building within window_s."""

    id: str
    rules: frozenset[str]
    window_s: float
    min_devices: int
    title_en: str
    title_zh: str
    category: Category
    notify: Notify
    reason: str


def compile_rule(spec: RuleSpec) -> Rule:
    """Flatten a validated spec into the engine's form."""
    if isinstance(spec, ThresholdSpec | RateSpec):
        return _levelled(spec)
    base = Rule(
        id=spec.id,
        kind=spec.kind,
        title_en=spec.title_en,
        title_zh=spec.title_zh,
        category=spec.category,
        notify=spec.notify,
        clears=spec.clears,
        levels=(Level(spec.severity, 1.0, 1.0, spec.reason, spec.title_en, spec.title_zh),),
        raise_=(1.0,),
        clear=(1.0,),
    )
    if isinstance(spec, EventSpec):
        return replace(base, event=spec.event, hold_s=spec.hold_s, record_only=spec.record_only)
    if isinstance(spec, CountSpec):
        return replace(base, event=spec.event, min_count=spec.min_count, window_s=spec.window_s)
    if isinstance(spec, DeadmanSpec):
        return replace(base, factor=spec.factor)
    if isinstance(spec, QualitySpec):
        return replace(base, for_s=spec.for_s)
    return replace(base, for_s=spec.for_s, inhibits_deadman=spec.inhibits_deadman)


def _levelled(spec: ThresholdSpec | RateSpec) -> Rule:
    rate = isinstance(spec, RateSpec)
    sign = -1.0 if spec.direction in ("below", "falling") else 1.0
    # a rate's levels are magnitudes of change (the samples are negated when falling)
    level_sign = 1.0 if rate else sign
    levels = tuple(
        Level(
            lv.severity,
            lv.raise_at,
            lv.raise_at if lv.clear_at is None else lv.clear_at,
            lv.reason,
            lv.title_en or spec.title_en,
            lv.title_zh or spec.title_zh,
        )
        for lv in spec.levels
    )
    return Rule(
        id=spec.id,
        kind=spec.kind,
        title_en=spec.title_en,
        title_zh=spec.title_zh,
        category=spec.category,
        notify=spec.notify,
        clears=spec.clears,
        levels=levels,
        raise_=tuple(level_sign * lv.raise_at for lv in levels),
        clear=tuple(level_sign * lv.clear_at for lv in levels),
        sign=sign,
        measurement=spec.measurement,
        for_s=spec.for_s,
        off_for_s=spec.off_for_s,
        window_s=spec.window_s if isinstance(spec, RateSpec) else 0.0,
    )


def compile_correlation(spec: CorrelationSpec) -> Correlation:
    return Correlation(
        spec.id,
        frozenset(spec.rules),
        spec.window_s,
        spec.min_devices,
        spec.title_en,
        spec.title_zh,
        spec.category,
        spec.notify,
        spec.reason,
    )
