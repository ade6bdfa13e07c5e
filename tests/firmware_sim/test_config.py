"""Config and scenario YAML: the shipped files load, errors name file, line and field."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import firmware_sim
from firmware_sim import ManualClock, ScenarioError, SimulatorSet, load_config, parse_config

SCENARIOS = Path(firmware_sim.__file__).parent / "scenarios"
DEMO = SCENARIOS / "demo.yaml"


def test_demo_covers_every_type_and_transport() -> None:
    cfg = load_config(DEMO)
    assert {d.type for d in cfg.devices} == {"smoke", "ebike", "manhole", "flood"}
    assert {b.transport for b in cfg.bus_configs()} == {"rtu", "tcp", "ascii"}
    assert 8 <= len(cfg.devices) <= 12


@pytest.mark.parametrize("name", sorted(p.name for p in SCENARIOS.glob("*.yaml") if p != DEMO))
def test_shipped_scenarios_play_on_the_demo(name: str) -> None:
    sims = SimulatorSet.from_config(DEMO, scenario=SCENARIOS / name, clock=ManualClock())
    assert sims.devices()


def issues(text: str, base: str | None = None) -> list[str]:
    with pytest.raises(ScenarioError) as err:
        parse_config(text, "s.yaml", parse_config(base, "base.yaml") if base else None)
    return [str(i) for i in err.value.issues]


def test_unknown_key_names_its_line() -> None:
    text = """devices:
  - id: smk-0001
    type: smoke
    transport: rtu
    bus: bus-1
    colour: red
"""
    assert issues(text) == ["s.yaml:6: devices[0].colour: Extra inputs are not permitted"]


def test_bad_type_and_unit() -> None:
    text = """devices:
  - {id: a, type: toaster, transport: rtu, bus: b, unit: 1}
  - {id: c, type: smoke, transport: rtu, bus: b,
     unit: 300}
"""
    found = issues(text)
    assert found[0].startswith("s.yaml:2: devices[0].type:")
    assert found[1].startswith("s.yaml:4: devices[1].unit:")


def test_cross_checks_name_the_line() -> None:
    text = """devices:
  - {id: fl-1, type: flood, transport: ascii, bus: line, unit: 1}
  - {id: fl-1, type: flood, transport: tcp, bus: line, unit: 1, initial: {colour: 1}}
timeline:
  - {at_s: 1, device: fl-1, event: smoke}
  - {at_s: 2, device: nobody, fault: crc}
"""
    found = issues(text)
    assert "s.yaml:2: devices[0].type: only smoke detectors speak the ASCII line protocol" in found
    assert "s.yaml:3: devices[1].id: device id 'fl-1' is used twice" in found
    assert any(f.startswith("s.yaml:3: devices[1].transport: bus 'line' is ascii") for f in found)
    assert any(f.startswith("s.yaml:3: devices[1].initial.colour: not settable") for f in found)
    assert any(f.startswith("s.yaml:5: timeline[0].event: flood has no event") for f in found)
    assert "s.yaml:6: timeline[1].device: no device 'nobody'" in found


def test_step_needs_exactly_one_action() -> None:
    text = "timeline:\n  - {at_s: 3, device: x, event: rise, fault: crc}\n"
    assert issues(text)[0].startswith("s.yaml:2: timeline[0]: Value error, give exactly one")


def test_timeline_checked_against_the_base() -> None:
    base = "devices:\n  - {id: fl-1, type: flood, transport: tcp, bus: gw}\n"
    text = """timeline:
  - {at_s: 1, device: fl-1, event: rain}
  - {at_s: 2, device: fl-1, event: smoke}
"""
    assert issues(text, base) == [
        "s.yaml:3: timeline[1].event: flood has no event 'smoke'; "
        "one of ['rise', 'rain', 'fault', 'clear']"
    ]


def test_yaml_syntax_error_names_the_line() -> None:
    assert issues("devices:\n\t- x\n")[0].startswith("s.yaml:2: YAML: found character")


def test_missing_file() -> None:
    with pytest.raises(ScenarioError, match=r"nope\.yaml"):
        load_config("nope.yaml")


async def test_timeline_plays_on_the_clock() -> None:
    clock = ManualClock()
    text = """devices:
  - {id: smk-1, type: smoke, transport: tcp, bus: gw}
timeline:
  - {at_s: 10, device: smk-1, event: smoke}
  - {at_s: 20, device: smk-1, fault: silent}
"""
    async with SimulatorSet.from_config(parse_config(text, "t.yaml"), clock=clock) as sims:
        dev = sims.device("smk-1")
        clock.advance(9.9)
        await asyncio.sleep(0)
        assert dev.truth()["alarm"] is False
        clock.advance(15)
        await asyncio.wait_for(sims.timeline_done(), 1)
        assert dev.truth()["alarm"] is True
        assert dev.fault == "silent"
