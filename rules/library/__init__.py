"""The shipped rule sets, one file per device type plus common liveness rules.

Read as package data (``importlib.resources``); a caller passes the texts to
``rules.parse_ruleset``, so a site can start from these and add its own files.
"""

from __future__ import annotations

from importlib import resources


def library_texts() -> dict[str, str]:
    """The shipped YAML files as {file name: text}."""
    root = resources.files(__package__)
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in sorted(root.iterdir(), key=lambda p: p.name)
        if entry.name.endswith(".yaml")
    }
