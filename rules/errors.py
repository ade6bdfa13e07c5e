"""The rules package's exceptions (a rule set's YAML errors are ``wire.yamlconf.ConfigError``)."""

from __future__ import annotations


class RuleError(Exception):
    """Root of the errors the rules package raises at run time."""


class SnapshotError(RuleError):
    """A snapshot that does not fit this engine or rule set."""
