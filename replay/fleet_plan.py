"""The fleet's scripted incidents: which device, when, and what its registers read meanwhile."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from replay.fleet_models import Overrides, Values, local_hour
from rules.devices import DeviceInfo

if TYPE_CHECKING:
    from replay.fleet import FleetOptions

TEST_S = 5.0  # the detector holds its test bit this long (firmware_sim)


@dataclass(frozen=True, slots=True)
class Incident:
    """Something scripted into the fleet (a replay should find most of these)."""

    kind: str  # fire, false_alarm, test, fault, displaced, outage
    target: str  # device id, or gateway id for an outage
    start: float
    end: float


class _Planner:
    def __init__(self, rng: random.Random, devices: list[DeviceInfo], opts: FleetOptions):
        self.rng, self.opts = rng, opts
        self.by_type: dict[str, list[DeviceInfo]] = {}
        for d in devices:
            self.by_type.setdefault(d.type, []).append(d)
        self.used: set[str] = set()
        self.overrides: dict[str, Overrides] = {}
        self.incidents: list[Incident] = []

    def when(self, hours: tuple[float, float] | None = None, length: float = 0.0) -> float:
        """A time in the span (in those local hours if the span has any), rounded to ms."""
        lo, hi = self.opts.start + 60, self.opts.end - length - 60
        t = lo
        for _ in range(200):
            t = self.rng.uniform(lo, max(lo, hi))
            if hours is None or hours[0] <= local_hour(t) < hours[1]:
                break
        return round(t, 3)

    def pick(self, kinds: tuple[str, ...]) -> DeviceInfo | None:
        pool = [d for k in kinds for d in self.by_type.get(k, []) if d.device not in self.used]
        if not pool:
            return None
        d = pool[self.rng.randrange(len(pool))]
        self.used.add(d.device)
        return d

    def script(self, kind: str, d: DeviceInfo, frames: list[tuple[float, Values | None]]) -> None:
        """Overrides from the first frame's time until the last one's (which restores)."""
        frames = [(round(t, 3), v) for t, v in frames]
        self.overrides.setdefault(d.device, Overrides()).frames.extend(frames)
        self.incidents.append(Incident(kind, d.device, frames[0][0], frames[-1][0]))

    def fire(self, d: DeviceInfo, t0: float, length: float) -> None:
        smoke = self.rng.uniform(4.5, 9.0)
        self.script(
            "fire",
            d,
            [
                (t0 - 90, {"obscuration_pct_per_m": round(smoke / 4, 2)}),
                (
                    t0,
                    {
                        "alarm": True,
                        "obscuration_pct_per_m": round(smoke, 2),
                        "temperature_c": 31.5,
                    },
                ),
                (
                    t0 + 120,
                    {
                        "alarm": True,
                        "obscuration_pct_per_m": round(smoke * 1.6, 2),
                        "temperature_c": 42.0,
                    },
                ),
                (t0 + length, {}),
            ],
        )


def plan_incidents(
    rng: random.Random, devices: list[DeviceInfo], opts: FleetOptions
) -> tuple[dict[str, Overrides], list[Incident], dict[str, tuple[float, float]]]:
    """Scripted incidents, per device overrides, and gateway outages (down, back)."""
    p = _Planner(rng, devices, opts)
    _fires(p)
    for _ in range(opts.false_alarms):  # breakfast smoke: short alarms in the morning
        if d := p.pick(("smoke",)):
            t0, length = p.when((6.5, 8.5), 130), rng.uniform(40, 120)
            smoke = round(rng.uniform(3.1, 4.0), 2)
            p.script(
                "false_alarm",
                d,
                [(t0, {"alarm": True, "obscuration_pct_per_m": smoke}), (t0 + length, {})],
            )
    for _ in range(opts.tests):  # installers and residents pressing the test button
        if d := p.pick(("smoke",)):
            t0 = p.when((9, 17), TEST_S)
            p.script("test", d, [(t0, {"test": True}), (t0 + TEST_S, {})])
    for _ in range(opts.faults):  # devices that stop answering for a while
        if d := p.pick(("smoke", "ebike", "manhole", "flood")):
            length = rng.uniform(600, 7200)
            t0 = p.when(None, length)
            p.script("fault", d, [(t0, None), (t0 + length, {})])
    for _ in range(max(1, len(p.by_type.get("manhole", [])) // 1000)):
        if d := p.pick(("manhole",)):
            length = rng.uniform(600, 2400)
            t0 = p.when((7, 20), length)
            tilted: Values = {"displaced": True, "tilt_alarm": True, "tilt_deg": 30.0}
            p.script("displaced", d, [(t0, tilted), (t0 + length, {})])
    outages = _outages(p, devices)
    for o in p.overrides.values():
        o.frames.sort(key=lambda f: f[0])
    p.incidents.sort(key=lambda i: (i.start, i.target))
    return p.overrides, p.incidents, outages


def _fires(p: _Planner) -> None:
    """Fires; every other one spreads to the building's other detector within 120 s."""
    buildings: dict[str, list[DeviceInfo]] = {}
    for smoke in p.by_type.get("smoke", []):
        buildings.setdefault(smoke.building, []).append(smoke)
    for i in range(p.opts.fires):
        fire = p.pick(("smoke",))
        if fire is None:
            return
        length = p.rng.uniform(600, 1800)
        t0 = p.when(None, length + 130)
        p.fire(fire, t0, length)
        others = [o for o in buildings[fire.building] if o.device not in p.used]
        if i % 2 == 0 and others:
            p.used.add(others[0].device)
            p.fire(others[0], t0 + p.rng.uniform(20, 110), length)


def _outages(p: _Planner, devices: list[DeviceInfo]) -> dict[str, tuple[float, float]]:
    outages: dict[str, tuple[float, float]] = {}
    gateways = sorted({d.gateway for d in devices})
    for gw in p.rng.sample(gateways, min(p.opts.outages, len(gateways))):
        length = p.rng.uniform(900, 1800)
        t0 = p.when(None, length)
        outages[gw] = (t0, round(t0 + length, 3))
        p.incidents.append(Incident("outage", gw, t0, round(t0 + length, 3)))
    return outages
