"""Threshold rules: hysteresis edges, severity levels, on/off delays, direction below."""

# ruff: noqa: E501 - YAML fixtures and expected error lines read best unwrapped

from __future__ import annotations

import pytest

from rules import Engine, TransitionKind
from tests.rules.helpers import brief, data, device, feed, ruleset

LEVELS = """
device_type: flood
category: flood
notify: page
rules:
  - id: lvl
    kind: threshold
    measurement: level_mm
    clears: {clears}
    for_s: {for_s}
    off_for_s: {off_for_s}
    levels:
      - {{severity: warning, raise_at: 150, clear_at: 130, reason: "test reason"}}
      - {{severity: danger, raise_at: 300, clear_at: 270, reason: "test reason", title_en: Deep, title_zh: 深}}
    title_en: Level
    title_zh: 水位
"""


def engine(clears: str = "auto", for_s: float = 0, off_for_s: float = 0) -> Engine:
    return Engine(ruleset(LEVELS.format(clears=clears, for_s=for_s, off_for_s=off_for_s)))


def run(e: Engine, values: list[tuple[float, float]]) -> list[tuple[str, str, str, float]]:
    d = {"d1": device()}
    return brief(feed(e, [("data", data("d1", ts, level_mm=v)) for ts, v in values], d))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([(0, 149.999)], []),
        ([(0, 150)], [("raise", "d1/lvl", "warning", 0)]),  # exactly at raise_at raises
        ([(0, 150), (1, 130)], [("raise", "d1/lvl", "warning", 0)]),  # exactly at clear_at holds
        (
            [(0, 150), (1, 129.9)],
            [("raise", "d1/lvl", "warning", 0), ("clear", "d1/lvl", "warning", 1)],
        ),
        ([(0, 150), (1, 140), (2, 149)], [("raise", "d1/lvl", "warning", 0)]),  # inside the band
        ([(0, 140)], []),  # inside the band from below: nothing
        (  # worsening upgrades the one open alarm; improving downgrades at the clear point
            [(0, 160), (1, 300), (2, 270), (3, 269), (4, 100)],
            [
                ("raise", "d1/lvl", "warning", 0),
                ("upgrade", "d1/lvl", "danger", 1),
                ("downgrade", "d1/lvl", "warning", 3),
                ("clear", "d1/lvl", "warning", 4),
            ],
        ),
        ([(0, 500)], [("raise", "d1/lvl", "danger", 0)]),  # straight to the worst level
        ([(0, 500), (1, 10)], [("raise", "d1/lvl", "danger", 0), ("clear", "d1/lvl", "danger", 1)]),
        (
            [(0, 500), (1, 200)],
            [("raise", "d1/lvl", "danger", 0), ("downgrade", "d1/lvl", "warning", 1)],
        ),
    ],
)
def test_hysteresis_and_levels(
    values: list[tuple[float, float]], expected: list[tuple[str, str, str, float]]
) -> None:
    assert run(engine(), values) == expected


def test_transition_fields() -> None:
    e = engine()
    t = e.on_data(data("d1", 5, level_mm=320), device())[0]
    assert (t.kind, t.rule_id, t.device, t.gateway, t.value, t.clears) == (
        TransitionKind.RAISE, "lvl", "d1", "gw1", 320, "auto",
    )  # fmt: skip
    assert (t.title_en, t.title_zh) == ("Deep", "深")  # the level's own title
    assert t.detail == {"measurement": "level_mm", "threshold": 300, "clear_at": 270}
    [a] = e.open_alarms()
    assert (a.key, a.severity, a.since, a.confirmed) == ("d1/lvl", "danger", 5, False)


def test_on_delay_needs_the_condition_to_hold() -> None:
    e = engine(for_s=30)
    assert run(e, [(0, 200), (29, 200), (29.5, 100)]) == []  # dropped before 30 s
    assert e.advance(100) == []
    assert run(e, [(200, 200)]) == []
    assert brief(e.advance(229)) == []
    assert brief(e.advance(230)) == [("raise", "d1/lvl", "warning", 230)]
    assert e.advance(230) == []  # idempotent for an equal now
    assert e.advance(10) == []  # ... and an older one


def test_on_delay_commits_the_level_that_held_throughout() -> None:
    e = engine(for_s=30)
    run(e, [(0, 400), (10, 200), (20, 400)])  # danger, warning, danger: warning held for 30 s
    assert brief(e.advance(30)) == [("raise", "d1/lvl", "warning", 30)]
    assert brief(e.advance(59)) == []
    assert brief(e.advance(60)) == [("upgrade", "d1/lvl", "danger", 60)]  # danger's own 30 s


def test_due_delay_fires_before_a_later_sample_without_advance() -> None:
    e = engine(for_s=30)
    assert run(e, [(0, 200), (40, 100)]) == [
        ("raise", "d1/lvl", "warning", 30),  # decided at its own time, before the sample at 40
        ("clear", "d1/lvl", "warning", 40),
    ]


def test_off_delay() -> None:
    e = engine(off_for_s=60)
    assert run(e, [(0, 200), (10, 100), (20, 200)]) == [("raise", "d1/lvl", "warning", 0)]
    assert e.advance(100) == []  # came back before the off-delay ran out
    run(e, [(200, 100)])
    assert brief(e.advance(259)) == []
    assert brief(e.advance(260)) == [("clear", "d1/lvl", "warning", 260)]


def test_manual_alarm_keeps_its_worst_severity_and_records_the_end_once() -> None:
    e = engine(clears="manual")
    got = run(e, [(0, 400), (1, 200), (2, 100), (3, 50), (4, 200)])
    assert got == [
        ("raise", "d1/lvl", "danger", 0),
        ("record", "d1/lvl", "danger", 2),  # condition ended: noted, not a clear
        ("record", "d1/lvl", "danger", 4),  # ... and back
    ]
    assert [a.severity for a in e.open_alarms()] == ["danger"]
    e.close("d1/lvl")  # a person closes it while the condition is on: no re-raise
    assert run(e, [(5, 250)]) == []
    assert run(e, [(6, 0), (7, 200)]) == [("raise", "d1/lvl", "warning", 7)]


def test_direction_below() -> None:
    e = Engine(
        ruleset("""
        device_type: smoke
        category: device_fault
        notify: summary
        rules:
          - id: batt
            kind: threshold
            measurement: battery_mv
            direction: below
            levels:
              - {severity: danger, raise_at: 2400, clear_at: 2700, reason: "test reason"}
            title_en: Battery
            title_zh: 电池
        """)
    )
    d = {"s1": device("s1", "smoke")}
    got = feed(
        e,
        [
            ("data", data("s1", t, battery_mv=v))
            for t, v in [(0, 2401), (1, 2400), (2, 2700), (3, 2701)]
        ],
        d,
    )
    assert brief(got) == [("raise", "s1/batt", "danger", 1), ("clear", "s1/batt", "danger", 3)]
    assert got[0].value == 2400


def test_bool_measurement() -> None:
    e = Engine(
        ruleset("""
        device_type: flood
        category: flood
        notify: page
        rules:
          - {id: bit, kind: threshold, measurement: level_alarm, title_en: A, title_zh: A,
             levels: [{severity: warning, raise_at: 1, reason: "device bit"}]}
        """)
    )
    assert [t.kind for t in e.on_data(data("d1", 0, level_alarm=True), device())] == ["raise"]
    assert [t.kind for t in e.on_data(data("d1", 1, level_alarm=False), device())] == ["clear"]
