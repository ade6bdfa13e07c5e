"""Typed YAML configuration with errors that name the file, the line and the field.

Shared by every side that reads a YAML file (gateway config, device profiles, rule sets).
Pure: takes the text and a name for it; reading the file is the caller's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic
import yaml

_M = TypeVar("_M", bound=pydantic.BaseModel)


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem: where it is and what is wrong."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ConfigError(ValueError):
    """A configuration that cannot be used; ``issues`` lists every problem found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def unreadable(filename: str, err: OSError) -> ConfigError:
    """The error for a config file that cannot be read (the caller did the I/O)."""
    return ConfigError([ConfigIssue(filename, None, "", f"cannot read: {err.strerror}")])


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key and sequence item."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    lines = {}
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        lines[key] = key_node.start_mark.line + 1
    return _Mapping(mapping, lines, node.start_mark.line + 1)


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> list[Any]:
    items = loader.construct_sequence(node, deep=True)
    return _Sequence(items, [n.start_mark.line + 1 for n in node.value], node.start_mark.line + 1)


class _Mapping(dict[Any, Any]):
    def __init__(self, data: dict[Any, Any], lines: dict[Any, int], line: int) -> None:
        super().__init__(data)
        self.lines = lines
        self.line = line


class _Sequence(list[Any]):
    def __init__(self, data: list[Any], lines: list[int], line: int) -> None:
        super().__init__(data)
        self.lines = lines
        self.line = line


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def parse_yaml(text: str, filename: str) -> Any:
    """Parse YAML text, keeping line numbers; a syntax error becomes a ConfigError."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else None
        raise ConfigError([ConfigIssue(filename, line, "", f"YAML syntax: {err.problem}")]) from err
    except yaml.YAMLError as err:
        raise ConfigError([ConfigIssue(filename, None, "", f"YAML: {err}")]) from err


def line_of(data: Any, loc: tuple[int | str, ...]) -> int | None:
    """The line of the deepest node of *loc* that the parsed data knows."""
    line = getattr(data, "line", None)
    node = data
    for part in loc:
        if isinstance(node, _Mapping) and part in node:  # noqa: SIM114 - separate for mypy narrowing
            line, node = node.lines[part], node[part]
        elif isinstance(node, _Sequence) and isinstance(part, int) and 0 <= part < len(node):
            line, node = node.lines[part], node[part]
        else:
            break
    return line


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _yaml_loc(data: Any, loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Pydantic's error location as a path in the YAML: without the steps pydantic adds
    (a validator's ``function-…``, a tagged union's tag such as ``serial``)."""
    out: list[int | str] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(part, str) and part.startswith("function-"):
            continue
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        if isinstance(node, dict) and part not in node and nxt is not None and nxt in node:
            continue  # a union tag between a list item and its field
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def validate(model: type[_M], data: Any, filename: str) -> _M:
    """Validate parsed YAML data against *model*; every error names file, line and field."""
    try:
        return model.model_validate(data if data is not None else {})
    except pydantic.ValidationError as err:
        issues = []
        for e in err.errors():
            loc = _yaml_loc(data, e["loc"])
            issues.append(ConfigIssue(filename, line_of(data, loc), _field(loc), e["msg"]))
        raise ConfigError(issues) from err


def load_model(model: type[_M], text: str, filename: str) -> _M:
    """Parse and validate in one step."""
    return validate(model, parse_yaml(text, filename), filename)
