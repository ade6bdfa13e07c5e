"""A validated rule set: rules, correlations and overrides, and each device's effective rules.

``parse_ruleset`` takes the files' text (the caller reads them) and raises one ``ConfigError``
listing every problem as ``file:line: field: message``, including cross-file ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rules.compiled import Correlation, Rule, compile_correlation, compile_rule
from rules.describe import describe_correlation, describe_override, describe_rule
from rules.devices import DeviceInfo
from rules.errors import RuleError
from rules.loader import FileLoad, OverrideEntry, load_file, merged_spec
from rules.schema import DEVICE_KINDS, MATCH_ORDER, RuleSpec
from wire.yamlconf import ConfigError, ConfigIssue


@dataclass(frozen=True, slots=True)
class Override:
    """A compiled override: devices whose ``field`` equals ``value`` change rule ``rule_id``."""

    field: str
    value: str
    rule_id: str
    set: Mapping[str, Any]
    disabled: bool | None
    rank: int  # specificity: type < community < grid < gateway < device
    order: int  # position in the rule set (later wins within one rank)
    reason: str


class RuleSet:
    """Rules, correlations and overrides; answers which rules apply to a device."""

    def __init__(
        self,
        specs: Mapping[str, RuleSpec],
        scopes: Mapping[str, tuple[str, ...] | None],
        correlations: tuple[Correlation, ...],
        overrides: tuple[Override, ...],
    ) -> None:
        self._specs = dict(specs)
        self._scopes = dict(scopes)
        self.rules: dict[str, Rule] = {rid: compile_rule(s) for rid, s in specs.items()}
        self.correlations = correlations
        self.overrides = overrides
        self._by_rule: dict[str, list[Override]] = {}
        for o in sorted(overrides, key=lambda o: (o.rank, o.order)):
            self._by_rule.setdefault(o.rule_id, []).append(o)
        self._by_type: dict[str, tuple[Rule, ...]] = {}
        self._variants: dict[tuple[str, tuple[int, ...]], Rule | None] = {}
        self.correlated: dict[str, tuple[Correlation, ...]] = {
            rid: tuple(c for c in correlations if rid in c.rules) for rid in self.rules
        }
        self.gateway_rule_ids = tuple(
            r.id for r in self.rules.values() if r.kind not in DEVICE_KINDS
        )

    def _type_rules(self, device_type: str) -> tuple[Rule, ...]:
        found = self._by_type.get(device_type)
        if found is None:
            found = tuple(
                r
                for r in self.rules.values()
                if r.kind in DEVICE_KINDS
                and (self._scopes[r.id] is None or device_type in (self._scopes[r.id] or ()))
            )
            self._by_type[device_type] = found
        return found

    def device_rules(self, device: DeviceInfo) -> tuple[Rule, ...]:
        """The rules in force for one device, overrides applied (memoised per combination)."""
        out = []
        for rule in self._type_rules(device.type):
            effective = self._apply(rule, lambda field: getattr(device, field, None))
            if effective is not None:
                out.append(effective)
        return tuple(out)

    def gateway_rules(self, gateway: str) -> tuple[Rule, ...]:
        """The gateway-level rules in force for one gateway."""
        out = []
        for rid in self.gateway_rule_ids:
            effective = self._apply(
                self.rules[rid], lambda field: gateway if field == "gateway" else None
            )
            if effective is not None:
                out.append(effective)
        return tuple(out)

    def _apply(self, rule: Rule, attr: Any) -> Rule | None:
        candidates = self._by_rule.get(rule.id)
        if not candidates:
            return rule
        applied = tuple(
            o.order
            for o in candidates
            if attr("device" if o.field == "device" else o.field) == o.value
        )
        if not applied:
            return rule
        key = (rule.id, applied)
        if key not in self._variants:
            self._variants[key] = self._variant(rule.id, applied)
        return self._variants[key]

    def _variant(self, rule_id: str, applied: tuple[int, ...]) -> Rule | None:
        by_order = {o.order: o for o in self.overrides}
        updates: dict[str, Any] = {}
        disabled = False
        for order in applied:  # least specific first: the most specific wins per field
            o = by_order[order]
            updates.update(o.set)
            if o.disabled is not None:
                disabled = o.disabled
        if disabled:
            return None
        try:
            return compile_rule(merged_spec(self._specs[rule_id], updates))
        except ValueError as err:  # each override alone validated; a combination did not
            raise RuleError(f"overrides {applied} of rule {rule_id} do not combine: {err}") from err

    def describe(self) -> list[str]:
        """One human line per rule, correlation and override (for ``gridalarm rules check``)."""
        lines = [describe_rule(self.rules[rid], self._scopes[rid]) for rid in sorted(self.rules)]
        lines += [describe_correlation(c) for c in self.correlations]
        lines += [
            describe_override(
                field=o.field,
                value=o.value,
                rule_id=o.rule_id,
                changes=o.set,
                disabled=o.disabled,
                reason=o.reason,
            )
            for o in self.overrides
        ]
        return lines


def parse_ruleset(files: Mapping[str, str]) -> RuleSet:
    """Validate rule files (name -> YAML text) into a RuleSet; ConfigError lists every issue."""
    loads: list[FileLoad] = []
    issues: list[ConfigIssue] = []
    for name in sorted(files):
        load = load_file(name, files[name])
        loads.append(load)
        issues += load.issues
    specs: dict[str, RuleSpec] = {}
    scopes: dict[str, tuple[str, ...] | None] = {}
    first: dict[str, str] = {}
    for load in loads:
        for spec, scope, where in load.rules:
            if spec.id in specs:
                issues.append(
                    _issue(where, "id", f"duplicate rule id {spec.id!r} ({first[spec.id]})")
                )
                continue
            specs[spec.id] = spec
            scopes[spec.id] = scope
            first[spec.id] = f"first at {where[0]}:{where[1]}"
    correlations: list[Correlation] = []
    for load in loads:
        for cspec, cwhere, rule_lines in load.correlations:
            if cspec.id in specs or cspec.id in first:
                issues.append(_issue(cwhere, "id", f"duplicate id {cspec.id!r}"))
            first.setdefault(cspec.id, f"first at {cwhere[0]}:{cwhere[1]}")
            for n, rid in enumerate(cspec.rules):
                if rid not in specs:
                    issues.append(_issue(rule_lines[n], f"rules[{n}]", f"unknown rule {rid!r}"))
            correlations.append(compile_correlation(cspec))
    overrides = _overrides(loads, specs, issues)
    if issues:
        raise ConfigError(issues)
    return RuleSet(specs, scopes, tuple(correlations), tuple(overrides))


def _overrides(
    loads: list[FileLoad], specs: Mapping[str, RuleSpec], issues: list[ConfigIssue]
) -> list[Override]:
    out: list[Override] = []
    for load in loads:
        for entry in load.overrides:
            found = _override(entry, len(out), specs, issues)
            if found is not None:
                out.append(found)
    return out


def _override(
    entry: OverrideEntry, order: int, specs: Mapping[str, RuleSpec], issues: list[ConfigIssue]
) -> Override | None:
    ospec = entry.spec
    base = specs.get(ospec.rule)
    if base is None:
        issues.append(
            _issue(entry.rule_where, entry.prefix + "rule", f"unknown rule {ospec.rule!r}")
        )
        return None
    field, value = ospec.match.key()
    if base.kind not in DEVICE_KINDS and field != "gateway":
        issues.append(
            _issue(entry.match_where, entry.prefix + "match", "gateway rules match only by gateway")
        )
        return None
    problems = entry.check_set(base)
    if problems:
        issues.extend(problems)
        return None
    return Override(
        field,
        value,
        ospec.rule,
        dict(ospec.set),
        ospec.disabled,
        MATCH_ORDER.index(field),
        order,
        ospec.reason,
    )


def _issue(where: tuple[str, int | None], field: str, message: str) -> ConfigIssue:
    return ConfigIssue(where[0], where[1], field, message)
