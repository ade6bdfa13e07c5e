"""Reading a folder of rule files: the one place in ``rules`` that touches the disk.

It runs once, at load time, for the cloud and for replay alike; the evaluator never does I/O.
"""

from __future__ import annotations

from pathlib import Path

from rules import RuleSet, library_texts, parse_ruleset
from wire.yamlconf import ConfigError, ConfigIssue


def rule_texts(directory: Path | None) -> dict[str, str]:
    """The YAML files of *directory* by path, or the shipped library when None."""
    if directory is None:
        return library_texts()
    if not directory.is_dir():
        raise ConfigError([ConfigIssue(str(directory), None, "", "not a folder of rule files")])
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise ConfigError([ConfigIssue(str(directory), None, "", "no *.yaml rule files here")])
    return {str(f): f.read_text(encoding="utf-8") for f in files}


def load_rules(directory: Path | None) -> RuleSet:
    """Parse a rule folder (or the library); ConfigError names file, line and field."""
    return parse_ruleset(rule_texts(directory))
