"""Read config and scenario YAML; every problem becomes a ScenarioError naming file:line: field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pydantic
import yaml

from firmware_sim.checks import Loc, problems
from firmware_sim.config import SimConfig
from firmware_sim.errors import ConfigIssue, ScenarioError


def load_config(path: str | os.PathLike[str], base: SimConfig | None = None) -> SimConfig:
    """Load a config or scenario file; *base* is the config a scenario is played on."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ScenarioError([ConfigIssue(str(path), None, "", err.strerror or str(err))]) from err
    return parse_config(text, str(path), base)


def parse_config(text: str, filename: str, base: SimConfig | None = None) -> SimConfig:
    """Parse and check YAML text."""
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else None
        raise ScenarioError([ConfigIssue(filename, line, "", f"YAML: {err.problem}")]) from err
    except yaml.YAMLError as err:
        raise ScenarioError([ConfigIssue(filename, None, "", f"YAML: {err}")]) from err
    try:
        cfg = SimConfig.model_validate(data if data is not None else {})
    except pydantic.ValidationError as err:
        issues = [_issue(filename, node, tuple(e["loc"]), e["msg"]) for e in err.errors()]
        raise ScenarioError(issues) from err
    found = problems(cfg, base)
    if found:
        raise ScenarioError([_issue(filename, node, loc, msg) for loc, msg in found])
    return cfg


def check(cfg: SimConfig, name: str = "<config>") -> None:
    """Raise ScenarioError if a config built in code is inconsistent."""
    found = problems(cfg)
    if found:
        raise ScenarioError([ConfigIssue(name, None, _field(loc), msg) for loc, msg in found])


def _issue(filename: str, node: yaml.Node | None, loc: Loc, message: str) -> ConfigIssue:
    return ConfigIssue(filename, _line_of(node, loc), _field(loc), message)


def _line_of(node: yaml.Node | None, loc: Loc) -> int | None:
    """Line of the deepest node along *loc* (a key's line for mapping entries)."""
    if node is None:
        return None
    line = int(node.start_mark.line) + 1
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        line, node = int(child[0].start_mark.line) + 1, child[1]
    return line


def _child(node: yaml.Node, part: int | str) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key, value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        items: list[Any] = node.value
        if 0 <= part < len(items):
            return items[part], items[part]
    return None


def _field(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
