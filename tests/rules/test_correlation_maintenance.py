"""Correlation (two smoke detectors in one building), maintenance windows, overrides."""

# ruff: noqa: E501 - YAML fixtures and expected error lines read best unwrapped

from __future__ import annotations

import pytest

from rules import DeviceInfo, Engine
from tests.rules.helpers import brief, data, device, event, feed, ruleset

SMOKE = """
device_type: smoke
category: fire
notify: page
rules:
  - {id: fire, kind: event, event: smoke_alarm, severity: critical, clears: manual, reason: "test reason",
     title_en: Suspected fire, title_zh: 疑似火警}
  - {id: test, kind: event, event: test_button, record_only: true, severity: info, reason: "test reason",
     title_en: T, title_zh: T, category: test, notify: board}
correlations:
  - {id: confirmed, rules: [fire], window_s: 120, reason: "test reason", title_en: Fire confirmed, title_zh: 火警确认}
"""
INFOS = {
    "s1": device("s1", "smoke", building="b1"),
    "s2": device("s2", "smoke", building="b1"),
    "s3": device("s3", "smoke", building="b2"),
    "s4": device("s4", "smoke"),
    "s5": device("s5", "smoke"),
}


def fires(*pairs: tuple[str, float]) -> list[tuple]:
    return [("event", event(dev, ts, "smoke_alarm")) for dev, ts in pairs]


@pytest.mark.parametrize(
    ("pairs", "confirmed"),
    [
        ((("s1", 0), ("s2", 120)), ["s1/fire", "s2/fire"]),  # within 120 s (inclusive)
        ((("s1", 0), ("s2", 121)), []),  # outside
        ((("s1", 0), ("s3", 10)), []),  # different buildings
        ((("s4", 0), ("s5", 10)), []),  # no building: never correlates
        ((("s1", 0), ("s1", 10)), []),  # one device is not two
        ((("s2", 50), ("s1", 0)), ["s2/fire", "s1/fire"]),  # out of order by event time
    ],
)
def test_correlation(pairs: tuple[tuple[str, float], ...], confirmed: list[str]) -> None:
    e = Engine(ruleset(SMOKE))
    got = feed(e, fires(*pairs), INFOS)
    confirms = [t for t in got if t.kind == "confirm"]
    assert [t.key for t in confirms] == confirmed
    for t in confirms:
        assert t.severity == "critical" and t.title_en == "Fire confirmed"
        assert t.detail["confirmed_by"] == ["s1", "s2"] and t.detail["building"] == "b1"
    assert {a.key for a in e.open_alarms() if a.confirmed} == set(confirmed)


def test_third_detector_joins_a_confirmed_group() -> None:
    e = Engine(ruleset(SMOKE))
    infos = {**INFOS, "s6": device("s6", "smoke", building="b1")}
    got = feed(e, fires(("s1", 0), ("s2", 10), ("s6", 20)), infos)
    assert [(t.kind.value, t.key) for t in got if t.kind == "confirm"] == [
        ("confirm", "s1/fire"), ("confirm", "s2/fire"), ("confirm", "s6/fire"),
    ]  # fmt: skip


def test_maintenance_suppresses_then_reconciles() -> None:
    e = Engine(ruleset(SMOKE))
    e.set_maintenance("s1", 100)
    got = feed(e, [
        ("event", event("s1", 10, "test_button")),
        ("event", event("s1", 20, "smoke_alarm", True)),
        ("event", event("s1", 30, "smoke_alarm", False)),
        ("event", event("s1", 40, "smoke_alarm", True)),
    ], INFOS)  # fmt: skip
    assert [(t.kind.value, t.detail["suppressed"]) for t in got] == [
        ("suppressed", "record"), ("suppressed", "raise"), ("suppressed", "raise"),
    ]  # fmt: skip
    assert e.open_alarms() == []
    assert brief(e.advance(100)) == [("raise", "s1/fire", "critical", 100)]  # still on at the end


def test_maintenance_ending_with_nothing_on_is_silent() -> None:
    e = Engine(ruleset(SMOKE))
    e.set_maintenance("s1", 100)
    feed(e, [*fires(("s1", 20)), ("event", event("s1", 30, "smoke_alarm", False))], INFOS)
    assert e.advance(200) == []
    assert brief(feed(e, fires(("s1", 300)), INFOS)) == [("raise", "s1/fire", "critical", 300)]


def test_device_in_maintenance_does_not_confirm_others() -> None:
    e = Engine(ruleset(SMOKE))
    e.set_maintenance("s2", 1000)
    got = feed(e, fires(("s1", 0), ("s2", 10)), INFOS)
    assert [t.kind.value for t in got] == ["raise", "suppressed"]


OVERRIDES = """
device_type: flood
category: flood
notify: page
rules:
  - id: lvl
    kind: threshold
    measurement: level_mm
    levels: [{severity: warning, raise_at: 150, reason: "test reason"}]
    title_en: L
    title_zh: L
overrides:
  - {match: {type: flood}, rule: lvl, set: {levels: [{severity: warning, raise_at: 100, reason: by type}]}}
  - {match: {community: c1}, rule: lvl, set: {levels: [{severity: warning, raise_at: 200, reason: by community}]}}
  - {match: {grid: g1}, rule: lvl, set: {levels: [{severity: warning, raise_at: 300, reason: by grid}]}}
  - {match: {device: d9}, rule: lvl, set: {levels: [{severity: warning, raise_at: 400, reason: by device}]}}
  - {match: {grid: g2}, rule: lvl, disabled: true}
  - {match: {device: d8}, rule: lvl, disabled: false, set: {for_s: 10}}
"""


@pytest.mark.parametrize(
    ("info", "raise_at"),
    [
        (DeviceInfo("d1", "gw1", "flood"), 100),
        (DeviceInfo("d1", "gw1", "flood", community="c1"), 200),
        (DeviceInfo("d1", "gw1", "flood", community="c1", grid="g1"), 300),
        (DeviceInfo("d9", "gw1", "flood", community="c1", grid="g1"), 400),  # device wins
        (DeviceInfo("d1", "gw1", "flood", grid="g2"), None),  # disabled for the grid
        (DeviceInfo("d8", "gw1", "flood", grid="g2"), 100),  # ... but enabled again for a device
    ],
)
def test_override_precedence(info: DeviceInfo, raise_at: float | None) -> None:
    rules = ruleset(OVERRIDES).device_rules(info)
    assert [r.levels[0].raise_at for r in rules] == ([] if raise_at is None else [raise_at])


def test_registry_change_rebuilds_the_devices_rules() -> None:
    e = Engine(ruleset(OVERRIDES))
    plain, moved = DeviceInfo("d1", "gw1", "flood"), DeviceInfo("d1", "gw1", "flood", grid="g1")
    assert brief(e.on_data(data("d1", 0, level_mm=150), plain)) == [
        ("raise", "d1/lvl", "warning", 0)
    ]
    assert e.on_data(data("d1", 1, level_mm=350), moved) == []  # level kept, no second raise
    # the grid's threshold (300) now decides
    assert brief(e.on_data(data("d1", 2, level_mm=250), moved)) == [
        ("clear", "d1/lvl", "warning", 2)
    ]
