"""Errors of the record / replay tooling; the CLI maps each to an exit code."""

from __future__ import annotations


class ReplayError(Exception):
    """Root of record / replay errors; the message is meant for the user."""


class RecordingError(ReplayError):
    """A recording file that cannot be read: not gzip, bad header, unreadable."""


class RulesError(ReplayError):
    """A rule set that cannot be loaded (the message lists file, line and field)."""


class BrokerUnreachable(ReplayError):
    """The broker could not be connected to, or the connection was lost."""
