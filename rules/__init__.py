"""The rule language and its evaluator: pure (no I/O, no wall clock; event time is passed in),
so the same code runs live in the cloud, in replay and, later, on the edge."""

from rules.devices import DeviceInfo

__all__ = ["DeviceInfo"]
