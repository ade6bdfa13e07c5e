"""Builders shared by the rules tests: rule sets from YAML snippets, messages, a runner."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from typing import Any

import pytest

from rules import DeviceInfo, Engine, RuleSet, Transition, parse_ruleset
from wire.messages import DataMessage, EventMessage, GatewayStatus, Quality
from wire.yamlconf import ConfigError

_seq = iter(range(1, 10**9))


def ruleset(text: str, name: str = "t.yaml") -> RuleSet:
    return parse_ruleset({name: textwrap.dedent(text)})


def errors(files: dict[str, str]) -> list[str]:
    """The ``file:line: field: message`` lines of a rule set that must be refused."""
    with pytest.raises(ConfigError) as info:
        parse_ruleset({k: textwrap.dedent(v) for k, v in files.items()})
    return str(info.value).splitlines()


def device(dev: str = "d1", type_: str = "flood", **kw: Any) -> DeviceInfo:
    return DeviceInfo(dev, kw.pop("gateway", "gw1"), type_, **kw)


def data(
    dev: str, ts: float, gw: str = "gw1", q: Quality = Quality.GOOD, **values: Any
) -> DataMessage:
    return DataMessage(gw=gw, dev=dev, seq=next(_seq), ts=ts, q=q, values=values)


def event(
    dev: str, ts: float, name: str, active: bool | None = True, gw: str = "gw1"
) -> EventMessage:
    return EventMessage(gw=gw, dev=dev, seq=next(_seq), ts=ts, event=name, active=active)


def status(gw: str, state: str, ts: float) -> GatewayStatus:
    return GatewayStatus(gw=gw, state=state, ts=ts)  # type: ignore[arg-type]


Step = tuple[Any, ...]


def feed(engine: Engine, steps: Iterable[Step], infos: dict[str, DeviceInfo]) -> list[Transition]:
    """Run steps: ("data"|"event", msg) use infos[msg.dev]; ("status", st); ("advance", t);
    ("maint", dev, until); ("close", key)."""
    out: list[Transition] = []
    for step in steps:
        what = step[0]
        if what == "data":
            out += engine.on_data(step[1], infos[step[1].dev])
        elif what == "event":
            out += engine.on_event(step[1], infos[step[1].dev])
        elif what == "status":
            out += engine.on_status(step[1])
        elif what == "advance":
            out += engine.advance(step[1])
        elif what == "maint":
            engine.set_maintenance(step[1], step[2])
        elif what == "close":
            engine.close(step[1])
    return out


def brief(ts: Iterable[Transition]) -> list[tuple[str, str, str, float]]:
    """(kind, key, severity, ts) of each transition: what most tests compare."""
    return [(t.kind.value, t.key, t.severity.value, t.ts) for t in ts]
