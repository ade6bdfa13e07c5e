"""One rule file from YAML text to validated specs, with the line of everything kept."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import pydantic

from rules.meaning import RULE_CATEGORIES, Notify, choices
from rules.schema import (
    RULE_MODELS,
    CorrelationSpec,
    OverrideSpec,
    RuleFileSpec,
    RuleSpec,
)
from wire.yamlconf import ConfigError, ConfigIssue, line_of, parse_yaml, validate

Where = tuple[str, int | None]
_S = TypeVar("_S", bound=pydantic.BaseModel)
Loc = tuple[int | str, ...]


def field_name(loc: Loc) -> str:
    """``("levels", 0, "raise_at")`` -> ``levels[0].raise_at``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(slots=True)
class OverrideEntry:
    """A validated override with the lines its later checks point at."""

    spec: OverrideSpec
    file: str
    raw: Any
    prefix: str  # "overrides[3]."

    @property
    def rule_where(self) -> Where:
        return self.file, line_of(self.raw, ("rule",))

    @property
    def match_where(self) -> Where:
        return self.file, line_of(self.raw, ("match",))

    def check_set(self, base: RuleSpec) -> list[ConfigIssue]:
        """Problems of ``set`` applied to the base rule, each at the line of its key."""
        try:
            merged_spec(base, self.spec.set)
        except pydantic.ValidationError as err:
            return [self._issue(tuple(e["loc"]), e["msg"]) for e in err.errors()]
        except _Problems as err:
            return [self._issue(loc, msg) for loc, msg in err.problems]
        return []

    def _issue(self, loc: Loc, message: str) -> ConfigIssue:
        where = ("set", *loc)
        return ConfigIssue(
            self.file, line_of(self.raw, where), self.prefix + field_name(where), message
        )


@dataclass(slots=True)
class FileLoad:
    """What one file contributed, and its problems."""

    name: str
    issues: list[ConfigIssue] = field(default_factory=list)
    rules: list[tuple[RuleSpec, tuple[str, ...] | None, Where]] = field(default_factory=list)
    correlations: list[tuple[CorrelationSpec, Where, list[Where]]] = field(default_factory=list)
    overrides: list[OverrideEntry] = field(default_factory=list)


class _Problems(ValueError):
    """Cross-field problems of one spec (levels out of order, a record_only rule paging)."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field_name(loc)}: {msg}" for loc, msg in problems))


def merged_spec(base: RuleSpec, updates: Mapping[str, Any]) -> RuleSpec:
    """The base rule with some fields replaced, validated again (raises ValueError)."""
    data = base.model_dump(exclude_unset=True)
    data.update(updates)
    spec = RULE_MODELS[base.kind].model_validate(data)
    _check(spec)  # type: ignore[arg-type]
    return spec  # type: ignore[return-value]


def _check(spec: RuleSpec) -> None:
    problems = spec.problems()
    if problems:
        raise _Problems(problems)


# What a missing meaning field says: the fix, and that nothing will guess it.
_MISSING = {
    "category": f"missing: say what the alarm is about ({choices(RULE_CATEGORIES)}), "
    "on the entry or as the file's default; it is never guessed from the id",
    "notify": f"missing: say how people are told ({choices(Notify)}), "
    "on the entry or as the file's default",
}


def _with_defaults(raw: Any, defaults: Mapping[str, str]) -> Any:
    """The entry with the file's default meaning filled in where it gives none."""
    if isinstance(raw, dict):
        for key, value in defaults.items():
            raw.setdefault(key, value)  # kept in the parsed tree: line_of still finds the entry
    return raw


def _explained(issue: ConfigIssue) -> ConfigIssue:
    name = issue.field.rsplit(".", 1)[-1]
    if name in _MISSING and issue.message == "Field required":
        return replace(issue, message=_MISSING[name])
    return issue


def load_file(name: str, text: str) -> FileLoad:
    """Parse and validate one file; problems are collected, not raised."""
    load = FileLoad(name)
    try:
        data = parse_yaml(text, name)
        spec = validate(RuleFileSpec, data, name)
    except ConfigError as err:
        load.issues += err.issues
        return load
    if data is None:
        return load
    scope = (spec.device_type,) if spec.device_type else None
    meaning = (("category", spec.category), ("notify", spec.notify))
    defaults = {k: v.value for k, v in meaning if v is not None}
    for n, raw in enumerate(data.get("rules") or ()):
        _load_rule(load, _with_defaults(raw, defaults), n, scope)
    for n, entry in enumerate(data.get("correlations") or ()):
        raw = _with_defaults(entry, defaults)
        cspec = _entry(load, CorrelationSpec, raw, f"correlations[{n}].")
        if cspec is not None:
            rule_lines = [(name, line_of(raw, ("rules", k))) for k in range(len(cspec.rules))]
            load.correlations.append((cspec, (name, line_of(raw, ("id",))), rule_lines))
    for n, raw in enumerate(data.get("overrides") or ()):
        ospec = _entry(load, OverrideSpec, raw, f"overrides[{n}].")
        if ospec is not None:
            load.overrides.append(OverrideEntry(ospec, name, raw, f"overrides[{n}]."))
    return load


def _entry(load: FileLoad, model: type[_S], raw: Any, prefix: str) -> _S | None:
    try:
        return validate(model, raw, load.name)
    except ConfigError as err:
        load.issues += [_prefixed(i, prefix) for i in err.issues]
        return None


def _prefixed(issue: ConfigIssue, prefix: str) -> ConfigIssue:
    return _explained(
        replace(issue, field=prefix + issue.field if issue.field else prefix.rstrip("."))
    )


def _load_rule(load: FileLoad, raw: Any, n: int, scope: tuple[str, ...] | None) -> None:
    prefix = f"rules[{n}]."
    kind = raw.get("kind")
    model = RULE_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        line = line_of(raw, ("kind",))
        known = ", ".join(RULE_MODELS)
        load.issues.append(
            ConfigIssue(load.name, line, prefix + "kind", f"unknown kind {kind!r} (one of {known})")
        )
        return
    try:
        spec: RuleSpec = validate(model, raw, load.name)  # type: ignore[assignment]
        _check(spec)
    except ConfigError as err:
        load.issues += [_prefixed(i, prefix) for i in err.issues]
        return
    except _Problems as err:
        load.issues += [
            ConfigIssue(load.name, line_of(raw, loc), prefix + field_name(loc), msg)
            for loc, msg in err.problems
        ]
        return
    rule_scope = tuple(spec.types) if spec.types is not None else scope
    load.rules.append((spec, rule_scope, (load.name, line_of(raw, ("id",)))))
