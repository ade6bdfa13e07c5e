"""Rate of change, discrete events (state, momentary, record-only) and counts in a window."""

# ruff: noqa: E501 - YAML fixtures and expected error lines read best unwrapped

from __future__ import annotations

import pytest

from rules import Engine
from tests.rules.helpers import brief, data, device, event, feed, ruleset

RATE = """
device_type: flood
category: flood
notify: page
rules:
  - id: rising
    kind: rate
    measurement: level_mm
    window_s: 600
    direction: {direction}
    levels: [{{severity: warning, raise_at: 50, clear_at: 20, reason: "test reason"}}]
    title_en: R
    title_zh: R
"""


@pytest.mark.parametrize(
    ("direction", "samples", "expected"),
    [
        ("rising", [(0, 100), (300, 149)], []),
        ("rising", [(0, 100), (300, 150)], [("raise", 300)]),  # exactly 50 within the window
        ("rising", [(0, 100), (600, 160)], []),  # (t - 600, t]: the sample at 0 has left
        ("rising", [(0, 100), (599, 160)], [("raise", 599)]),
        ("rising", [(0, 200), (60, 100), (120, 160)], [("raise", 120)]),  # from the window's low
        ("rising", [(0, 100), (100, 160), (200, 150)], [("raise", 100)]),  # 50 >= 20: holds
        ("rising", [(0, 100), (100, 160), (200, 110)], [("raise", 100), ("clear", 200)]),
        ("falling", [(0, 300), (100, 250)], [("raise", 100)]),
        ("falling", [(0, 300), (100, 350)], []),
    ],
)
def test_rate(
    direction: str, samples: list[tuple[float, float]], expected: list[tuple[str, float]]
) -> None:
    e = Engine(ruleset(RATE.format(direction=direction)))
    got = feed(e, [("data", data("d1", t, level_mm=v)) for t, v in samples], {"d1": device()})
    assert [(t.kind.value, t.ts) for t in got] == expected


def test_rate_clears_when_the_rise_leaves_the_window() -> None:
    e = Engine(ruleset(RATE.format(direction="rising")))
    feed(
        e, [("data", data("d1", t, level_mm=v)) for t, v in [(0, 100), (60, 170)]], {"d1": device()}
    )
    assert e.advance(599) == []
    assert brief(e.advance(10_000)) == [("clear", "d1/rising", "warning", 600)]  # at its own time


EVENTS = """
device_type: smoke
category: fire
notify: page
rules:
  - {id: fire, kind: event, event: smoke_alarm, severity: critical, clears: manual, reason: "test reason",
     title_en: Suspected fire, title_zh: 疑似火警}
  - {id: fault, kind: event, event: fault, severity: warning, hold_s: 30, reason: "test reason",
     title_en: F, title_zh: F}
  - {id: test, kind: event, event: test_button, record_only: true, severity: info, reason: "test reason",
     title_en: T, title_zh: T, category: test, notify: board}
  - {id: many, kind: count, event: ebike_detected, min_count: 3, window_s: 600, severity: warning,
     reason: "test reason", title_en: M, title_zh: M}
"""


def run(e: Engine, steps: list[tuple]) -> list[tuple[str, str, str, float]]:
    return brief(feed(e, steps, {"s1": device("s1", "smoke")}))


def test_state_event_auto_and_manual() -> None:
    e = Engine(ruleset(EVENTS))
    got = run(e, [
        ("event", event("s1", 0, "fault", True)),
        ("event", event("s1", 5, "fault", False)),
        ("event", event("s1", 10, "smoke_alarm", True)),
        ("event", event("s1", 20, "smoke_alarm", False)),
        ("event", event("s1", 30, "smoke_alarm", True)),
    ])  # fmt: skip
    assert got == [
        ("raise", "s1/fault", "warning", 0),
        ("clear", "s1/fault", "warning", 5),
        ("raise", "s1/fire", "critical", 10),
        ("record", "s1/fire", "critical", 20),  # manual: never cleared by the sensor
        ("record", "s1/fire", "critical", 30),
    ]


def test_manual_end_detail() -> None:
    e = Engine(ruleset(EVENTS))
    d = device("s1", "smoke")
    e.on_event(event("s1", 10, "smoke_alarm", True), d)
    [t] = e.on_event(event("s1", 20, "smoke_alarm", False), d)
    assert t.detail["condition"] == "ended" and t.clears == "manual"


def test_momentary_event_holds() -> None:
    e = Engine(ruleset(EVENTS))
    assert run(
        e, [("event", event("s1", 0, "fault", None)), ("event", event("s1", 20, "fault", None))]
    ) == [("raise", "s1/fault", "warning", 0)]
    assert brief(e.advance(49)) == []
    assert brief(e.advance(50)) == [("clear", "s1/fault", "warning", 50)]  # 30 s after the last


def test_test_button_is_recorded_never_raised() -> None:
    e = Engine(ruleset(EVENTS))
    got = run(
        e,
        [
            ("event", event("s1", 0, "test_button", True)),
            ("event", event("s1", 5, "test_button", False)),
        ],
    )
    assert got == [("record", "s1/test", "info", 0)]
    assert e.open_alarms() == []


def test_count_in_window() -> None:
    e = Engine(ruleset(EVENTS))
    steps = [("event", event("s1", t, "ebike_detected", None)) for t in (0, 100, 599)]
    assert run(e, steps) == [("raise", "s1/many", "warning", 599)]
    # 0 leaves the window at 600 (before the event at 650 is looked at): clear, then raise again
    assert run(e, [("event", event("s1", 650, "ebike_detected", None))]) == [
        ("clear", "s1/many", "warning", 600),
        ("raise", "s1/many", "warning", 650),
    ]
    # 100, 599, 650 remain; the window drops under 3 when 100 leaves: at 700
    assert brief(e.advance(699)) == []
    assert brief(e.advance(2000)) == [("clear", "s1/many", "warning", 700)]


def test_count_needs_them_within_the_window() -> None:
    e = Engine(ruleset(EVENTS))
    steps = [("event", event("s1", t, "ebike_detected", None)) for t in (0, 300, 600)]
    assert run(e, steps) == []  # 0 left the window (600 - 600, 600] when 600 arrived
