"""The rule language and its evaluator: pure (no I/O, no wall clock; event time is passed in),
so the same code runs live in the cloud, in replay and, later, on the edge.

    ruleset = parse_ruleset(library_texts())        # or {filename: yaml_text, ...}
    engine = Engine(ruleset)
    transitions = engine.on_data(msg, device_info) + engine.advance(msg.ts)
"""

from rules.devices import DeviceInfo
from rules.engine import Engine
from rules.errors import RuleError, SnapshotError
from rules.library import library_texts
from rules.meaning import Category, Notify
from rules.model import Clears, OpenAlarm, Severity, Transition, TransitionKind
from rules.ruleset import RuleSet, parse_ruleset

__all__ = [
    "Category",
    "Clears",
    "DeviceInfo",
    "Engine",
    "Notify",
    "OpenAlarm",
    "RuleError",
    "RuleSet",
    "Severity",
    "SnapshotError",
    "Transition",
    "TransitionKind",
    "library_texts",
    "parse_ruleset",
]
