"""The rule language's errors name file, line and field; the shipped library is valid."""

# ruff: noqa: E501 - YAML fixtures and expected error lines read best unwrapped

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rules import library_texts, parse_ruleset
from tests.rules.helpers import errors

GOOD = """\
device_type: flood
rules:
  - id: lvl
    kind: threshold
    measurement: level_mm
    levels:
      - {severity: warning, raise_at: 150, clear_at: 130, reason: "test reason"}
    title_en: L
    title_zh: L
    category: flood
    notify: page
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("raise_at: 150", "raise_at: high"),
            "t.yaml:7: rules[0].levels[0].raise_at: Input should be a valid number",
        ),
        (
            GOOD.replace("clear_at: 130", "clear_at: 160"),
            "t.yaml:7: rules[0].levels[0].clear_at: must not be above raise_at (hysteresis)",
        ),
        (
            GOOD.replace("kind: threshold", "kind: thresold"),
            "t.yaml:4: rules[0].kind: unknown kind 'thresold'",
        ),
        (GOOD.replace("    title_zh: L\n", ""), "t.yaml:3: rules[0].title_zh: Field required"),
        (
            GOOD.replace("measurement:", "measurment:"),
            "t.yaml:5: rules[0].measurment: Extra inputs are not permitted",
        ),
        (
            GOOD.replace('reason: "test reason"', "reason: x"),
            "t.yaml:7: rules[0].levels[0].reason: String should have at least 3 characters",
        ),
        (GOOD + "  - id: lvl\n    kind: deadman\n", "t.yaml:12: rules[1]"),
        (GOOD + "foo: 1\n", "t.yaml:12: foo: Extra inputs are not permitted"),
        ("rules: [\n", "t.yaml:2: YAML syntax"),
    ],
)
def test_error_names_file_line_field(text: str, expected: str) -> None:
    assert any(line.startswith(expected) for line in errors({"t.yaml": text})), errors(
        {"t.yaml": text}
    )


def test_cross_file_errors_all_listed() -> None:
    other = """\
    rules:
      - {id: lvl, kind: deadman, factor: 3, severity: warning, reason: dup id, title_en: S, title_zh: S, category: device_fault, notify: summary}
    correlations:
      - {id: c, rules: [nope], reason: "test reason", title_en: C, title_zh: C, category: fire, notify: page}
    overrides:
      - {match: {grid: g1}, rule: missing, disabled: true}
      - match: {device: d1}
        rule: lvl
        set:
          levels: [{severity: warning, raise_at: 100, clear_at: 120, reason: "test reason"}]
      - {match: {device: d1}, rule: lvl, set: {for_s: -1}}
      - {match: {device: d1, grid: g1}, rule: lvl, disabled: true}
    """
    lines = errors({"a.yaml": GOOD, "b.yaml": other})
    assert any(
        x.startswith("b.yaml:2: id: duplicate rule id 'lvl' (first at a.yaml:3)") for x in lines
    )
    assert "b.yaml:4: rules[0]: unknown rule 'nope'" in lines
    assert "b.yaml:6: overrides[0].rule: unknown rule 'missing'" in lines
    assert (
        "b.yaml:10: overrides[1].set.levels[0].clear_at: must not be above raise_at (hysteresis)"
        in lines
    )
    assert any(
        x.startswith(
            "b.yaml:11: overrides[2].set.for_s: Input should be greater than or equal to 0"
        )
        for x in lines
    )
    assert any(
        x.startswith("b.yaml:12: overrides[3].match: Value error, give exactly one") for x in lines
    )


def test_library_parses_and_describes_every_rule() -> None:
    texts = library_texts()
    assert {"smoke.yaml", "ebike.yaml", "manhole.yaml", "flood.yaml", "common.yaml"} <= set(texts)
    rs = parse_ruleset(texts)
    lines = rs.describe()
    assert len(lines) == len(rs.rules) + len(rs.correlations) + len(rs.overrides)
    assert any(
        line.startswith("flood-level [threshold, flood]: level_mm ≥ 150 → warning")
        for line in lines
    )


def test_every_library_threshold_has_a_reason() -> None:
    rs = parse_ruleset(library_texts())
    for rule in rs.rules.values():
        for lv in rule.levels:
            assert len(lv.reason) > 15, rule.id


def test_library_names_exist_in_the_edge_profiles() -> None:
    root = Path(__file__).resolve().parents[2] / "edge" / "profiles"
    profiles = {p.stem: yaml.safe_load(p.read_text()) for p in root.glob("*.yaml")}
    rs = parse_ruleset(library_texts())
    for rule in rs.rules.values():
        if not (rule.measurement or rule.event):
            continue
        types = rs._scopes[rule.id] or ()
        for t in types:
            prof = profiles[t]
            if rule.measurement:
                assert rule.measurement in {m["name"] for m in prof["measurements"]}, rule.id
            else:
                assert rule.event in {e["name"] for e in prof["events"]}, rule.id
