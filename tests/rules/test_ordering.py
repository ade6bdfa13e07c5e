"""Out-of-order and repeated messages."""

# ruff: noqa: E501 - YAML fixtures and expected error lines read best unwrapped

from __future__ import annotations

from rules import Engine
from tests.rules.helpers import brief, data, device, event, ruleset

RULES = """
device_type: flood
category: flood
notify: page
rules:
  - id: lvl
    kind: threshold
    measurement: level_mm
    levels: [{severity: warning, raise_at: 150, clear_at: 130, reason: "test reason"}]
    title_en: L
    title_zh: L
  - {id: fault, kind: event, event: sensor_fault, severity: warning, reason: "test reason", title_en: F, title_zh: F}
  - {id: burst, kind: count, event: blip, min_count: 2, window_s: 60, severity: warning, reason: "test reason",
     title_en: B, title_zh: B}
"""


def test_out_of_order_data_is_counted_and_ignored() -> None:
    e, d = Engine(ruleset(RULES)), device()
    assert brief(e.on_data(data("d1", 10, level_mm=200), d)) == [("raise", "d1/lvl", "warning", 10)]
    assert e.on_data(data("d1", 5, level_mm=0), d) == []  # older than the state: ignored
    assert e.stats["out_of_order"] == 1
    assert len(e.open_alarms()) == 1


def test_repeated_identical_message_makes_no_transition() -> None:
    e, d = Engine(ruleset(RULES)), device()
    msg = data("d1", 10, level_mm=200)
    assert len(e.on_data(msg, d)) == 1
    assert e.on_data(msg, d) == []
    assert e.on_data(data("d1", 10, level_mm=200), d) == []  # same ts and values, new seq
    assert e.stats["duplicates"] == 2
    ev = event("d1", 11, "sensor_fault")
    assert len(e.on_event(ev, d)) == 1
    assert e.on_event(ev, d) == []
    blip = event("d1", 12, "blip", None)
    assert e.on_event(blip, d) == [] and e.on_event(blip, d) == []  # counted once


def test_same_ts_different_values_is_processed() -> None:
    e, d = Engine(ruleset(RULES)), device()
    e.on_data(data("d1", 10, level_mm=100), d)
    assert brief(e.on_data(data("d1", 10, level_mm=200), d)) == [("raise", "d1/lvl", "warning", 10)]


def test_out_of_order_state_event_ignored_but_counts_in_windows() -> None:
    e, d = Engine(ruleset(RULES)), device()
    e.on_event(event("d1", 20, "sensor_fault", True), d)
    e.on_event(event("d1", 30, "sensor_fault", False), d)
    assert e.on_event(event("d1", 25, "sensor_fault", True), d) == []  # late: state unchanged
    assert e.stats["out_of_order"] == 1
    assert e.on_event(event("d1", 100, "blip", None), d) == []
    got = e.on_event(event("d1", 50, "blip", None), d)  # late, but within 60 s of the other
    assert brief(got) == [("raise", "d1/burst", "warning", 100)]
    assert e.on_event(event("d1", 10, "blip", None), d) == []  # outside every window now
