"""Every rule says what it means (category, notify); a rule set that does not is refused."""

# ruff: noqa: E501 - YAML fixtures and expected error lines read best unwrapped

from __future__ import annotations

import pytest

from rules import Category, Engine, Notify, library_texts, parse_ruleset
from rules.meaning import RULE_CATEGORIES
from tests.rules import helpers
from tests.rules.helpers import device, event, feed, ruleset

FLOOD = """\
device_type: flood
category: flood
notify: page
rules:
  - id: lvl
    kind: threshold
    measurement: level_mm
    levels:
      - {severity: warning, raise_at: 150, clear_at: 130, reason: "test reason"}
    title_en: L
    title_zh: L
  - id: fault
    kind: event
    event: sensor_fault
    severity: warning
    reason: "test reason"
    title_en: F
    title_zh: F
    category: device_fault
    notify: summary
"""


def errors(text: str) -> list[str]:
    return helpers.errors({"t.yaml": text})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            FLOOD.replace("category: flood\n", ""),
            "t.yaml:4: rules[0].category: missing: say what the alarm is about (fire, flood, manhole, ebike, device_fault, gateway, test)",
        ),
        (
            FLOOD.replace("notify: page\n", ""),
            "t.yaml:4: rules[0].notify: missing: say how people are told (page, summary, board)",
        ),
        (
            FLOOD.replace("category: device_fault", "category: battery"),
            "t.yaml:19: rules[1].category: Input should be 'fire', 'flood'",
        ),
        (
            FLOOD.replace("notify: summary", "notify: sms"),
            "t.yaml:20: rules[1].notify: Input should be 'page', 'summary' or 'board'",
        ),
        (
            FLOOD.replace("category: flood", "category: water"),
            "t.yaml:2: category: Input should be 'fire', 'flood'",
        ),
        (
            FLOOD.replace("title_zh: F", "title_zh: " + "水" * 21),
            "t.yaml:18: rules[1].title_zh: String should have at most 20 characters",
        ),
        (
            FLOOD.replace("category: device_fault", "category:"),
            "t.yaml:19: rules[1].category: Input should be 'fire', 'flood'",
        ),
    ],
)
def test_unknown_or_missing_meaning_is_an_error_at_its_line(text: str, expected: str) -> None:
    found = errors(text)
    assert any(line.startswith(expected) for line in found), found


def test_a_missing_category_is_reported_for_each_rule_never_defaulted() -> None:
    found = errors(FLOOD.replace("category: flood\n", ""))
    assert [line.split(": ")[0:2] for line in found] == [["t.yaml:4", "rules[0].category"]]


def test_file_defaults_apply_and_a_rule_overrides_them() -> None:
    rs = parse_ruleset({"t.yaml": FLOOD})
    assert (rs.rules["lvl"].category, rs.rules["lvl"].notify) == (Category.FLOOD, Notify.PAGE)
    assert (rs.rules["fault"].category, rs.rules["fault"].notify) == (
        Category.DEVICE_FAULT,
        Notify.SUMMARY,
    )


SMOKE = """\
device_type: smoke
rules:
  - {id: fire, kind: event, event: smoke_alarm, severity: critical, clears: manual, reason: "test reason",
     title_en: Suspected fire, title_zh: 疑似火警, category: fire, notify: summary}
  - {id: test, kind: event, event: test_button, record_only: true, severity: info, reason: "test reason",
     title_en: T, title_zh: T, category: test, notify: board}
correlations:
  - {id: confirmed, rules: [fire], window_s: 120, reason: "test reason", title_en: Fire confirmed,
     title_zh: 火警确认, category: fire, notify: page}
"""


def test_a_correlation_declares_its_meaning_too() -> None:
    found = errors(SMOKE.replace(" category: fire, notify: page}", "}"))
    assert "t.yaml:8: correlations[0].category: missing" in "\n".join(found), found
    assert any(line.startswith("t.yaml:8: correlations[0].notify: missing") for line in found)


def test_a_record_only_rule_must_not_message_anyone() -> None:
    found = errors(SMOKE.replace("category: test, notify: board", "category: test, notify: page"))
    assert found == [
        "t.yaml:6: rules[1].notify: a record_only rule never messages anyone: notify must be board"
    ]


def test_an_override_may_change_notify_but_never_the_category() -> None:
    notify = 'overrides:\n  - {match: {grid: g1}, rule: fault, set: {notify: page}, reason: "old people"}\n'
    category = "  - {match: {grid: g2}, rule: fault, set: {category: flood}}\n"
    assert errors(FLOOD + notify + category) == [
        "t.yaml:23: overrides[1]: Value error, set cannot change category"
    ]
    rs = parse_ruleset({"t.yaml": FLOOD + notify})
    in_g1 = {r.id: r for r in rs.device_rules(device("d1", grid="g1"))}
    elsewhere = {r.id: r for r in rs.device_rules(device("d2", grid="g9"))}
    assert in_g1["fault"].notify is Notify.PAGE
    assert in_g1["fault"].category is Category.DEVICE_FAULT
    assert elsewhere["fault"].notify is Notify.SUMMARY


def test_transitions_carry_the_rule_meaning_and_a_confirm_its_correlation() -> None:
    infos = {d: device(d, "smoke", building="b1") for d in ("s1", "s2")}
    got = feed(
        Engine(ruleset(SMOKE)),
        [
            ("event", event("s1", 0, "smoke_alarm")),
            ("event", event("s1", 1, "test_button", None)),
            ("event", event("s2", 5, "smoke_alarm")),
        ],
        infos,
    )
    seen = [(t.kind.value, t.device, t.category.value, t.notify.value, t.title_en) for t in got]
    assert ("raise", "s1", "fire", "summary", "Suspected fire") in seen
    assert ("record", "s1", "test", "board", "T") in seen
    assert ("confirm", "s1", "fire", "page", "Fire confirmed") in seen
    assert ("confirm", "s2", "fire", "page", "Fire confirmed") in seen


# The shipped choices, written out: a change to what a rule means is a deliberate edit here.
LIBRARY = {
    "smoke-fire": ("fire", "page"),
    "smoke-prealarm": ("fire", "summary"),
    "smoke-heat": ("fire", "page"),
    "smoke-heat-rise": ("fire", "page"),
    "smoke-fault": ("device_fault", "summary"),
    "smoke-low-battery": ("device_fault", "summary"),
    "smoke-battery-flat": ("device_fault", "summary"),
    "smoke-tamper": ("device_fault", "summary"),
    "smoke-test": ("test", "board"),
    "smoke-confirmed": ("fire", "page"),
    "flood-level": ("flood", "page"),
    "flood-rising": ("flood", "page"),
    "flood-heavy-rain": ("flood", "board"),
    "flood-sensor-fault": ("device_fault", "summary"),
    "manhole-displaced": ("manhole", "page"),
    "manhole-tilt-alarm": ("manhole", "page"),
    "manhole-tilt": ("manhole", "summary"),
    "manhole-water": ("manhole", "summary"),
    "manhole-low-battery": ("device_fault", "summary"),
    "manhole-signal": ("device_fault", "board"),
    "ebike-detected": ("ebike", "board"),
    "ebike-repeated": ("ebike", "page"),
    "ebike-door-held": ("ebike", "page"),
    "ebike-camera-fault": ("device_fault", "summary"),
    "device-silent": ("device_fault", "summary"),
    "device-not-responding": ("device_fault", "summary"),
    "gateway-offline": ("gateway", "page"),
}


def test_every_library_rule_and_correlation_means_what_was_chosen() -> None:
    rs = parse_ruleset(library_texts())
    meant = {r.id: (r.category.value, r.notify.value) for r in rs.rules.values()}
    meant |= {c.id: (c.category.value, c.notify.value) for c in rs.correlations}
    assert meant == LIBRARY


def test_every_category_is_used_by_the_library_and_record_only_rules_stay_on_the_board() -> None:
    rs = parse_ruleset(library_texts())
    assert {r.category for r in rs.rules.values()} == set(RULE_CATEGORIES)
    for rule in rs.rules.values():
        if rule.record_only:
            assert rule.notify is Notify.BOARD, rule.id


def test_describe_says_what_each_rule_means() -> None:
    lines = parse_ruleset(library_texts()).describe()
    assert any(
        line.startswith("manhole-low-battery [event, manhole]")
        and line.endswith("— device_fault, summary: Manhole sensor battery low / 井盖传感器电量低")
        for line in lines
    ), lines
    assert any(line.endswith("— fire, page: Fire confirmed / 火警确认") for line in lines)


def test_no_rule_may_declare_a_workers_report() -> None:
    found = errors(FLOOD.replace("category: device_fault", "category: report"))
    assert any("report is for workers' hazard reports" in line for line in found), found
