"""One human line per rule, correlation and override (what ``gridalarm rules check`` lists)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rules.compiled import Correlation, Level, Rule


def _n(x: float) -> str:
    return f"{x:g}"


def _levels(rule: Rule, cmp: str, back: str, unit: str = "") -> str:
    parts = []
    for lv in rule.levels:
        hyst = f", ends {back} {_n(lv.clear_at)}" if lv.clear_at != lv.raise_at else ""
        parts.append(f"{cmp} {_n(lv.raise_at)}{unit} → {lv.severity}{hyst} ({lv.reason})")
    return "; ".join(parts)


def _delays(rule: Rule) -> str:
    out = ""
    if rule.for_s:
        out += f"; on-delay {_n(rule.for_s)} s"
    if rule.off_for_s:
        out += f"; off-delay {_n(rule.off_for_s)} s"
    return out


def _threshold(rule: Rule, lv: Level) -> str:
    above = rule.sign > 0
    body = _levels(rule, "≥" if above else "≤", "below" if above else "above")
    return f"{rule.measurement} {body}{_delays(rule)}"


def _rate(rule: Rule, lv: Level) -> str:
    verb = "rises" if rule.sign > 0 else "falls"
    body = _levels(rule, "by ≥", "below")
    return f"{rule.measurement} {verb} within {_n(rule.window_s)} s {body}{_delays(rule)}"


def _event(rule: Rule, lv: Level) -> str:
    if rule.record_only:
        return f"event {rule.event} → recorded, never dispatched ({lv.reason})"
    return (
        f"event {rule.event} → {lv.severity} while active, "
        f"momentary ones for {_n(rule.hold_s)} s ({lv.reason})"
    )


def _count(rule: Rule, lv: Level) -> str:
    return (
        f"≥ {rule.min_count} × event {rule.event} within {_n(rule.window_s)} s "
        f"→ {lv.severity} ({lv.reason})"
    )


def _deadman(rule: Rule, lv: Level) -> str:
    return f"no message for {_n(rule.factor)} × heartbeat → {lv.severity} ({lv.reason})"


def _quality(rule: Rule, lv: Level) -> str:
    return f"comm_error for ≥ {_n(rule.for_s)} s → {lv.severity} ({lv.reason})"


def _gateway(rule: Rule, lv: Level) -> str:
    inhibit = "; inhibits its devices' deadman alarms" if rule.inhibits_deadman else ""
    return f"gateway offline for ≥ {_n(rule.for_s)} s → {lv.severity}{inhibit} ({lv.reason})"


_WHAT: dict[str, Callable[[Rule, Level], str]] = {
    "threshold": _threshold,
    "rate": _rate,
    "event": _event,
    "count": _count,
    "deadman": _deadman,
    "quality": _quality,
    "gateway_offline": _gateway,
}


def describe_rule(rule: Rule, scope: tuple[str, ...] | None) -> str:
    if rule.kind == "gateway_offline":
        where = "every gateway"
    else:
        where = ", ".join(scope) if scope else "all device types"
    return (
        f"{rule.id} [{rule.kind}, {where}]: {_WHAT[rule.kind](rule, rule.levels[0])}"
        f"{'' if rule.record_only else f'; clears {rule.clears}'}"
        f" — {rule.category}, {rule.notify}: {rule.title_en} / {rule.title_zh}"
    )


def describe_correlation(c: Correlation) -> str:
    rules = ", ".join(sorted(c.rules))
    return (
        f"{c.id} [correlation]: alarms of {rules} on ≥ {c.min_devices} devices of one building "
        f"within {_n(c.window_s)} s → confirmed ({c.reason})"
        f" — {c.category}, {c.notify}: {c.title_en} / {c.title_zh}"
    )


def describe_override(
    *,
    field: str,
    value: str,
    rule_id: str,
    changes: Mapping[str, Any],
    disabled: bool | None,
    reason: str,
) -> str:
    what = []
    if disabled is not None:
        what.append("disabled" if disabled else "enabled")
    if changes:
        what.append("set " + ", ".join(f"{k}={v!r}" for k, v in changes.items()))
    why = f" ({reason})" if reason else ""
    return f"override {rule_id} for {field} {value}: {'; '.join(what)}{why}"
