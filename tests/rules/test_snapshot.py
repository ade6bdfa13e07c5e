"""Snapshot and restore: a run split anywhere continues exactly like an unsplit one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import Engine, RuleSet, SnapshotError, library_texts, parse_ruleset
from tests.rules.helpers import data, device, event, feed, status
from wire.messages import Quality

RULESET: RuleSet = parse_ruleset(library_texts())
INFOS = {
    "f1": device("f1", "flood", heartbeat_s=20),
    "f2": device("f2", "flood", gateway="gw2", heartbeat_s=30),
    "s1": device("s1", "smoke", building="b1", heartbeat_s=20),
    "s2": device("s2", "smoke", building="b1", gateway="gw2", heartbeat_s=20),
    "e1": device("e1", "ebike", heartbeat_s=20),
}
SMOKE_EVENTS = ["smoke_alarm", "fault", "test_button", "tamper", "low_battery"]


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    steps: list[tuple[Any, ...]] = []
    t = 0.0
    for _ in range(draw(st.integers(1, 60))):
        t += draw(st.sampled_from([0.0, 1.0, 5.0, 17.0, 45.0, 200.0]))
        jitter = draw(st.sampled_from([0.0, 0.0, 0.0, -30.0]))  # now and then out of order
        ts = max(0.0, t + jitter)
        kind = draw(st.integers(0, 9))
        if kind <= 3:
            dev = draw(st.sampled_from(["f1", "f2"]))
            level = draw(st.sampled_from([0, 100, 140, 150, 160, 280, 300, 400]))
            q = draw(st.sampled_from([Quality.GOOD] * 4 + [Quality.COMM_ERROR]))
            values = {} if q is Quality.COMM_ERROR else {"level_mm": level, "rain_mm_h": level / 10}
            steps.append(("data", data(dev, ts, gw=INFOS[dev].gateway, q=q, **values)))
        elif kind == 4:
            dev = draw(st.sampled_from(["s1", "s2"]))
            steps.append(
                (
                    "data",
                    data(
                        dev,
                        ts,
                        gw=INFOS[dev].gateway,
                        temperature_c=draw(st.sampled_from([20, 52, 60])),
                    ),
                )
            )
        elif kind <= 6:
            dev = draw(st.sampled_from(["s1", "s2"]))
            name = draw(st.sampled_from(SMOKE_EVENTS))
            steps.append(
                (
                    "event",
                    event(
                        dev,
                        ts,
                        name,
                        draw(st.sampled_from([True, False, None])),
                        gw=INFOS[dev].gateway,
                    ),
                )
            )
        elif kind == 7:
            steps.append(("event", event("e1", ts, "ebike_detected", None)))
        elif kind == 8:
            steps.append(
                (
                    "status",
                    status(
                        draw(st.sampled_from(["gw1", "gw2"])),
                        draw(st.sampled_from(["online", "offline"])),
                        ts,
                    ),
                )
            )
        else:
            choice = draw(st.integers(0, 2))
            if choice == 0:
                steps.append(
                    (
                        "maint",
                        draw(st.sampled_from(list(INFOS))),
                        ts + draw(st.sampled_from([10.0, 100.0])),
                    )
                )
            elif choice == 1:
                steps.append(("close", draw(st.sampled_from(["s1/smoke-fire", "s2/smoke-fire"]))))
        steps.append(("advance", t))
    return steps


@settings(max_examples=200, deadline=None)
@given(streams(), st.floats(0, 1))
def test_split_anywhere_continues_identically(steps: list[tuple[Any, ...]], where: float) -> None:
    whole = feed(Engine(RULESET), steps, INFOS)
    cut = int(where * len(steps))
    first = Engine(RULESET)
    got = feed(first, steps[:cut], INFOS)
    saved = json.loads(json.dumps(first.snapshot()))  # must survive JSON
    second = Engine.restore(RULESET, saved)
    got += feed(second, steps[cut:], INFOS)
    assert got == whole
    assert second.snapshot() == json.loads(json.dumps(second.snapshot()))


def test_snapshot_of_a_busy_engine_is_json_and_restores_open_alarms() -> None:
    e = Engine(RULESET)
    feed(e, [("data", data("f1", 0, level_mm=400)), ("advance", 100)], INFOS)
    restored = Engine.restore(RULESET, json.loads(json.dumps(e.snapshot())))
    assert restored.open_alarms() == e.open_alarms()
    assert restored.stats == e.stats and restored.devices_seen == 1


def test_bad_snapshot() -> None:
    with pytest.raises(SnapshotError):
        Engine.restore(RULESET, {"version": 99})


@settings(max_examples=200, deadline=None)
@given(streams(), st.lists(st.floats(0, 1), min_size=1, max_size=4))
def test_delta_snapshots_add_up_to_the_full_one(
    steps: list[tuple[Any, ...]], cuts: list[float]
) -> None:
    """Checkpoints that store only the devices touched since the last one lose nothing."""
    engine = Engine(RULESET)
    devices: dict[str, Any] = {}
    done = 0
    for where in sorted(cuts):
        cut = int(where * len(steps))
        feed(engine, steps[done:cut], INFOS)
        done = cut
        base, changed = engine.snapshot_delta()
        devices.update(json.loads(json.dumps(changed)))
        assert json.loads(json.dumps({**base, "devices": devices})) == json.loads(
            json.dumps(engine.snapshot())
        )
    rest = steps[done:]
    restored = Engine.restore(RULESET, {**base, "devices": devices})
    assert feed(restored, rest, INFOS) == feed(engine, rest, INFOS)
