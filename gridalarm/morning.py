"""The scripted morning of the demo: what happens in the district while the crew answers.

Each story plays on the real simulated buses (the gateway reads the devices as it would read
RS485) or, for the uplink, on one fleet gateway; the times are script seconds, compressed by
``Pace``. A story waits on what the cloud decided where the rules need time of their own —
water above a level for 30 s is 30 s of the gateway's clock at any speed — so the script
holds together however fast it runs. It tells the crew when each device is all clear and
which outcome the worker on the spot gives (the breakfast shop: a false alarm).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from cloud.lifecycle.rule_alarms import AlarmChange
from firmware_sim import SimulatorSet
from gridalarm.crew import Hazard, Pace, Scene
from gridalarm.fleet import LiveFleet

SMOKE, FLOOD, MANHOLE, EBIKE = "smk-0001", "fl-0001", "mh-0001", "eb-0001"
OUTAGE_S = 300.0
FLOOD_DANGER_WAIT_S = 300.0
# what a finished morning leaves on the board, at any speed
EXPECTED_RAISED = (
    (SMOKE, "smoke-fire"),
    (FLOOD, "flood-level"),
    (MANHOLE, "manhole-displaced"),
    (EBIKE, "ebike-repeated"),
)
FALSE_ALARM_DEVICES = (SMOKE,)  # the breakfast shop: every alarm of its detector
EXPECTED_REPORTS = ("hazard.blocked_exit",)  # the worker at the breakfast shop finds one
HAZARD_NOTE = "店后消防通道堆满纸箱 / cartons block the fire exit behind the shop"


class AlarmWatch:
    """The cloud's committed alarm transitions, for the script to wait on."""

    def __init__(self) -> None:
        self.seen: list[AlarmChange] = []
        self._news = asyncio.Event()
        self._open = True

    def on_changes(self, changes: list[AlarmChange]) -> None:
        if self._open:
            self.seen += changes
            self._news.set()

    def close(self) -> None:
        """Stop keeping transitions (the morning is over; a long run would only grow the list)."""
        self._open = False
        self.seen.clear()

    async def until(self, match: Callable[[AlarmChange], bool], since: int = 0) -> AlarmChange:
        """The first transition from the *since*-th seen on that *match* accepts."""
        start = since
        while True:
            for change in self.seen[start:]:
                if match(change):
                    return change
            start = len(self.seen)
            self._news.clear()
            await self._news.wait()


@dataclass
class Morning:
    """The stories of the morning, each a named task."""

    sims: SimulatorSet
    fleet: LiveFleet | None
    watch: AlarmWatch
    scene: Scene
    pace: Pace
    say: Callable[[str], None]
    outage_gateway: str | None = None
    smoke_at: tuple[float, float] | None = None  # where the breakfast shop is (lat, lon)

    async def play(self) -> None:
        self.scene.outcomes[SMOKE] = ("false_alarm", "早餐油烟，非火情 / breakfast smoke, no fire")
        if self.smoke_at is not None:  # behind the shop, the worker finds the fire exit blocked
            self.scene.hazards[SMOKE] = Hazard("blocked_exit", HAZARD_NOTE, *self.smoke_at)
        for key in (SMOKE, FLOOD, MANHOLE, EBIKE, self.outage_gateway):
            if key is not None:
                self.scene.all_clear(key)  # the crew waits for these before resolving
        self.say(f"MORNING starts (speed {self.pace.speed:g}x)")
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.breakfast(), name="demo.morning.breakfast")
            tg.create_task(self.flood(), name="demo.morning.flood")
            tg.create_task(self.manhole(), name="demo.morning.manhole")
            tg.create_task(self.ebike(), name="demo.morning.ebike")
            tg.create_task(self.outage(), name="demo.morning.outage")
        self.watch.close()
        self.say("MORNING over: every scripted incident has played; the crew closes the rest")

    def _trigger(self, device: str, event: str, story: str) -> None:
        self.sims.device(device).trigger(event)
        self.say(f"SCRIPT {story}: {device} {event}")

    def _raised(self, device: str, rule: str) -> Callable[[AlarmChange], bool]:
        return lambda c: c.device == device and c.rule_id == rule and c.kind in ("raise", "upgrade")

    def _recorded(self, device: str, rule: str) -> Callable[[AlarmChange], bool]:
        return lambda c: c.device == device and c.rule_id == rule

    async def breakfast(self) -> None:
        """Smoke from a breakfast shop's fryer: the detector alarms; the worker finds no fire."""
        await self.pace.wait(20)
        self._trigger(SMOKE, "smoke", "breakfast smoke at a shop")
        await self.watch.until(self._raised(SMOKE, "smoke-fire"))
        await self.pace.wait(120)
        self._trigger(SMOKE, "clear", "the smoke has cleared")
        self.scene.all_clear(SMOKE).set()

    async def flood(self) -> None:
        """Rain fills a low street: warning, then danger; the rain stops and the water drains."""
        await self.pace.wait(40)
        self._trigger(FLOOD, "rain", "heavy rain on a low street")
        rising = self._raised(FLOOD, "flood-level")
        await self.watch.until(rising)
        self.say("SCRIPT the water keeps rising (danger at 300 mm held 30 s)")
        with contextlib.suppress(TimeoutError):  # a fast morning may not wait for the danger
            async with asyncio.timeout(FLOOD_DANGER_WAIT_S / self.pace.speed):
                await self.watch.until(lambda c: rising(c) and c.severity == "danger")
        await self.pace.wait(120)
        self._trigger(FLOOD, "clear", "the rain stops, the water drains")
        self.scene.all_clear(FLOOD).set()

    async def manhole(self) -> None:
        """A truck knocks a manhole cover askew; the crew puts it back."""
        await self.pace.wait(60)
        self._trigger(MANHOLE, "tilt", "a truck knocks a manhole cover askew")
        await self.watch.until(self._raised(MANHOLE, "manhole-displaced"))
        await self.pace.wait(180)
        self._trigger(MANHOLE, "clear", "the cover is back in place")
        self.scene.all_clear(MANHOLE).set()

    async def ebike(self) -> None:
        """A resident rides an e-bike into the same lift again and again."""
        await self.pace.wait(90)
        for n in range(1, 5):
            seen = len(self.watch.seen)
            self._trigger(EBIKE, "ebike", f"an e-bike rides into the lift ({n})")
            await self.watch.until(self._recorded(EBIKE, "ebike-detected"), since=seen)
            await self.pace.wait(60)
        await self.watch.until(self._raised(EBIKE, "ebike-repeated"))
        self.scene.all_clear(EBIKE).set()

    async def outage(self) -> None:
        """A fleet gateway loses its uplink for five minutes, then sends what it kept."""
        if self.fleet is None or self.outage_gateway is None:
            return
        await self.pace.wait(150)
        gw = self.outage_gateway
        self.fleet.cut_uplink(gw, OUTAGE_S / self.pace.speed)
        self.say(f"SCRIPT a gateway loses its uplink: {gw} for {OUTAGE_S:g} s (script time)")
        await self.pace.wait(OUTAGE_S)
        await self.fleet.gateways[gw].caught_up.wait()
        self.say(f"SCRIPT {gw} is back and has caught up")
        self.scene.all_clear(gw).set()
