"""Deadman, comm_error quality, gateway offline and its inhibition of deadman alarms."""

# ruff: noqa: E501 - YAML fixtures and expected error lines read best unwrapped

from __future__ import annotations

from rules import Engine
from tests.rules.helpers import brief, data, device, feed, ruleset, status
from wire.messages import Quality

RULES = """
category: device_fault
notify: summary
rules:
  - {id: silent, kind: deadman, factor: 3, severity: warning, reason: "test reason", title_en: S, title_zh: S}
  - {id: noresp, kind: quality, for_s: 300, severity: warning, reason: "test reason", title_en: N, title_zh: N}
  - {id: gwoff, kind: gateway_offline, for_s: 60, severity: danger, reason: "test reason",
     title_en: G, title_zh: G}
"""
INFOS = {"a": device("a", heartbeat_s=60), "b": device("b", heartbeat_s=10, gateway="gw2")}


def run(e: Engine, steps: list[tuple]) -> list[tuple[str, str, str, float]]:
    return brief(feed(e, steps, INFOS))


def test_deadman_raises_after_factor_heartbeats_and_clears_on_any_message() -> None:
    e = Engine(ruleset(RULES))
    run(e, [("data", data("a", 0, level_mm=1)), ("data", data("a", 100, level_mm=1))])
    assert run(e, [("advance", 279)]) == []
    assert run(e, [("advance", 1000)]) == [("raise", "a/silent", "warning", 280)]
    assert run(e, [("advance", 2000)]) == []  # once
    assert run(e, [("data", data("a", 2100, level_mm=1))]) == [
        ("clear", "a/silent", "warning", 2100)
    ]
    assert run(e, [("advance", 2279)]) == []
    assert run(e, [("advance", 2280)]) == [("raise", "a/silent", "warning", 2280)]  # watched again


def test_only_devices_seen_can_go_silent() -> None:
    e = Engine(ruleset(RULES))
    assert e.advance(10**6) == [] and e.devices_seen == 0


def test_gateway_offline_raises_after_for_s_and_inhibits_its_devices_deadman() -> None:
    e = Engine(ruleset(RULES))
    run(e, [("data", data("a", 0, level_mm=1)), ("data", data("b", 0, gw="gw2", level_mm=1))])
    got = run(e, [("status", status("gw1", "offline", 50)), ("advance", 109)])
    assert got == [("raise", "b/silent", "warning", 30)]  # other gateway's device unaffected
    assert run(e, [("advance", 110)]) == [("raise", "gw1/gwoff", "danger", 110)]
    got = feed(e, [("advance", 1000)], INFOS)
    assert brief(got) == [("suppressed", "a/silent", "warning", 180)]  # inhibited, noted once
    assert got[0].detail["inhibited_by"] == "gw1 offline"
    assert run(e, [("advance", 5000)]) == []
    # back online: the gateway alarm clears, its devices get a fresh window from then
    assert run(e, [("status", status("gw1", "online", 6000))]) == [
        ("clear", "gw1/gwoff", "danger", 6000)
    ]
    assert run(e, [("advance", 6179)]) == []
    assert run(e, [("advance", 6180)]) == [("raise", "a/silent", "warning", 6180)]


def test_short_gateway_outage_raises_nothing() -> None:
    e = Engine(ruleset(RULES))
    run(e, [("data", data("a", 0, level_mm=1))])
    got = run(
        e,
        [
            ("status", status("gw1", "offline", 10)),
            ("status", status("gw1", "online", 40)),
            ("advance", 200),
        ],
    )
    assert got == []
    assert run(e, [("advance", 220)]) == [("raise", "a/silent", "warning", 220)]  # 40 + 180


def test_gateway_status_out_of_order_and_repeated() -> None:
    e = Engine(ruleset(RULES))
    assert e.on_status(status("gw1", "online", 10)) == []  # already presumed online
    assert e.on_status(status("gw1", "offline", 5)) == []  # older than the last status
    assert e.stats["out_of_order"] == 1
    e.on_status(status("gw1", "offline", 20))
    assert e.on_status(status("gw1", "offline", 25)) == []
    assert brief(e.advance(80)) == [("raise", "gw1/gwoff", "danger", 80)]
    [a] = e.open_alarms()
    assert (a.device, a.gateway, a.key) == (None, "gw1", "gw1/gwoff")


def test_comm_error_counts_as_heard_and_raises_after_for_s() -> None:
    e = Engine(ruleset(RULES))
    steps = [("data", data("a", t, q=Quality.COMM_ERROR)) for t in range(0, 400, 50)]
    assert run(e, steps) == [("raise", "a/noresp", "warning", 300)]  # and no deadman
    assert run(e, [("advance", 500)]) == []
    assert run(e, [("data", data("a", 500, level_mm=3))]) == [("clear", "a/noresp", "warning", 500)]


def test_short_comm_error_streak_raises_nothing() -> None:
    e = Engine(ruleset(RULES))
    steps = [("data", data("a", 0, q=Quality.COMM_ERROR)), ("data", data("a", 100, level_mm=1))]
    assert run(e, [*steps, ("advance", 250)]) == []
