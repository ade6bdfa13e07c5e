"""The morning waits on the cloud's transitions; the crew waits on the script's all-clears."""

from __future__ import annotations

import asyncio

from cloud.lifecycle.board import BoardRow
from cloud.lifecycle.rule_alarms import AlarmChange
from gridalarm.crew import Scene
from gridalarm.morning import AlarmWatch


def change(device: str, rule: str, kind: str = "raise", severity: str = "warning") -> AlarmChange:
    return AlarmChange(
        kind, f"{rule}/{device}", rule, device, "gw", severity, 0.0, "t", "标题", "flood",
        "page", None, "auto", {},
    )  # fmt: skip


async def test_until_finds_a_transition_seen_before_or_after_and_only_from_since() -> None:
    watch = AlarmWatch()
    watch.on_changes([change("fl-1", "flood-level")])
    found = await watch.until(lambda c: c.rule_id == "flood-level")
    assert found.device == "fl-1"
    later = asyncio.create_task(watch.until(lambda c: c.device == "fl-1", since=1))
    await asyncio.sleep(0)  # let it look at what is there, and wait
    assert not later.done(), "the first transition is before `since`"
    watch.on_changes([change("fl-2", "flood-level"), change("fl-1", "flood-level", "upgrade")])
    assert (await asyncio.wait_for(later, 1)).kind == "upgrade"
    watch.close()
    watch.on_changes([change("fl-3", "flood-level")])
    assert watch.seen == [], "closed: nothing kept"


def row(device: str | None, category: str, gateway: str = "gw") -> BoardRow:
    return BoardRow(
        1, "k", "r", device, gateway, "warning", "t", "t", False, category, "page", 0.0, True,
        "notified", None, 0.0, None, None, None, None, None, None, False,
    )  # fmt: skip


async def test_the_scene_says_when_and_how_a_worker_closes_an_alarm() -> None:
    scene = Scene(outcomes={"smk-1": ("false_alarm", "breakfast")})
    await asyncio.wait_for(scene.wait_clear("unscripted"), 1)  # at once
    scene.all_clear("smk-1")  # registered by the script, not yet clear
    waiting = asyncio.create_task(scene.wait_clear("smk-1"))
    await asyncio.sleep(0)
    assert not waiting.done()
    scene.all_clear("smk-1").set()
    await asyncio.wait_for(waiting, 1)
    assert scene.outcome(row("smk-1", "fire")) == ("false_alarm", "breakfast")
    assert scene.outcome(row(None, "gateway"))[0] == "device_fault"
    assert scene.outcome(row("mh-1", "manhole"))[0] == "real"
