"""The notification outbox: retry with back-off, channel fallback, exactly once, grouping."""

from __future__ import annotations

import json
import time
from typing import Any

from cloud.lifecycle import AlarmDesk, DeliveryError, LifecycleConfig, OutboundMessage
from cloud.lifecycle import outbox as ob
from cloud.lifecycle.sender import OutboxSender
from tests.cloud.test_lifecycle_fixtures import (
    RankedDispatcher,
    RecordingSender,
    alarm_id,
    change,
    commit,
    config,
    events_of,
    outbox_rows,
)
from tests.support import until


def one_step(**more: Any) -> LifecycleConfig:
    return config(policies__standard={"steps": [{"wait_s": 0, "target": "next_nearest"}]}, **more)


def desk(url: str, cfg: LifecycleConfig, sender: RecordingSender, workers: int = 1) -> AlarmDesk:
    dispatcher = RankedDispatcher([f"w{i}" for i in range(1, workers + 1)])
    return AlarmDesk(url, cfg, dispatcher=dispatcher, sender=sender, instance="test-outbox")


def delivery_events(url: str, aid: int) -> list[tuple[str, dict[str, Any]]]:
    return [(e.kind, json.loads(e.detail)) for e in events_of(url, aid) if e.actor == "outbox"]


async def test_retryable_errors_back_off_exponentially_then_deliver_once(url: str):
    def fail(m: OutboundMessage) -> DeliveryError | None:
        return DeliveryError("twilio 500", retryable=True) if m.attempt <= 2 else None

    sender = RecordingSender(fail)
    c = change("smk-1/smoke-fire", severity="danger")
    commit(url, [c])
    async with desk(url, one_step(), sender) as d:
        d.on_changes([c])
        await until(lambda: sender.delivered, 10, "the delivery")
        # the provider answered; wait for the outbox to record it before the desk closes
        await until(lambda: delivery_events(url, alarm_id(url, c.key)), 10, "the audit")
    times = [t for _, t in sender.calls]
    assert [m.channel for m, _ in sender.calls] == ["sms"] * 3
    assert len({m.message_id for m, _ in sender.calls}) == 1  # one idempotency key
    assert times[1] - times[0] >= 0.05 - 0.01 and times[2] - times[1] >= 0.1 - 0.01
    aid = alarm_id(url, c.key)
    ((kind, detail),) = delivery_events(url, aid)
    assert (kind, detail["channel"], detail["attempts"]) == ("delivered", "sms", 3)


async def test_a_permanent_error_falls_back_to_the_next_channel(url: str):
    def fail(m: OutboundMessage) -> DeliveryError | None:
        return DeliveryError("number blocked", retryable=False) if m.channel == "sms" else None

    sender = RecordingSender(fail)
    c = change("smk-1/smoke-fire", severity="danger")
    commit(url, [c])
    async with desk(url, one_step(), sender) as d:
        d.on_changes([c])
        await until(lambda: sender.delivered, 10, "the delivery")
        await until(lambda: len(delivery_events(url, alarm_id(url, c.key))) == 2, 10, "the audit")
    assert [m.channel for m, _ in sender.calls] == ["sms", "push"]
    events = delivery_events(url, alarm_id(url, c.key))
    assert [(k, d["channel"]) for k, d in events] == [("fallback", "sms"), ("delivered", "push")]
    assert events[0][1]["error"] == "number blocked"


async def test_retries_exhausted_on_every_channel_are_audited_as_failed(url: str):
    sender = RecordingSender(lambda m: DeliveryError("down", retryable=True))
    c = change("smk-1/smoke-fire", severity="danger")
    commit(url, [c])
    async with desk(url, one_step(), sender) as d:
        d.on_changes([c])
        aid = await until(lambda: _aid(url, c.key), 5, "the alarm")
        await until(lambda: _last_kind(url, aid) == "delivery_failed", 10, "the failure")
    assert [m.channel for m, _ in sender.calls] == ["sms"] * 3 + ["push"] * 3
    (row,) = outbox_rows(url)
    assert (row.state, row.attempts) == ("failed", 6)
    assert (
        delivery_events(url, aid)[-1][1]["errors"] == [["sms", "down"]] * 3 + [["push", "down"]] * 3
    )


def _last_kind(url: str, aid: int) -> str | None:
    events = delivery_events(url, aid)
    return events[-1][0] if events else None


def _aid(url: str, key: str) -> int | None:
    try:
        return alarm_id(url, key)
    except AssertionError:
        return None


async def test_a_crash_during_the_send_resends_with_the_same_id_and_the_provider_dedups(url: str):
    sender = RecordingSender()
    cfg = one_step()
    c = change("smk-1/smoke-fire", severity="danger")
    commit(url, [c])
    async with desk(url, cfg, RecordingSender()):
        pass  # only creates the tables
    d2 = desk(url, cfg, sender)
    d2.lifecycle.apply_changes([c])
    # the claim commits 'sending'; then the process dies inside Sender.send (no result stored)
    with d2.db.begin() as conn:
        (claimed,) = ob.claim(conn, time.time(), 10, d2.outbox.claimer)
    await sender.send(claimed)  # the provider got it; our process never heard back
    assert outbox_rows(url)[0].state == "sending"
    async with d2:
        await until(lambda: outbox_rows(url)[0].state == "sent", 10, "the resend")
    ids = [m.message_id for m, _ in sender.calls]
    assert ids == [claimed.message_id, claimed.message_id]  # resent with the SAME key
    assert list(sender.delivered) == [claimed.message_id]  # delivered once
    assert OutboxSender  # the recovery lives there: sending -> pending at start


async def test_an_alarm_storm_is_grouped_per_worker_and_nothing_is_lost(url: str):
    window_s = 0.5
    sender = RecordingSender()
    cfg = one_step(grouping__window_s=window_s)
    storm = [change(f"smk-{i:03d}/smoke-fire") for i in range(500)]  # critical: two each
    commit(url, storm)
    started = time.monotonic()
    async with desk(url, cfg, sender, workers=4) as d:
        for i in range(0, 500, 50):  # ingest hands them over checkpoint by checkpoint
            d.on_changes(storm[i : i + 50])
            want = i + 50
            await until(lambda: len(outbox_rows(url)) >= want, 10, "the batch enqueued")  # noqa: B023
        await until(
            lambda: (
                all(r.state in ("sent", "grouped") for r in outbox_rows(url))
                and len(outbox_rows(url)) >= 1000
            ),
            20,
            "every alert sent or carried by a sent summary",
        )
    elapsed = time.monotonic() - started
    per_worker: dict[str, list[OutboundMessage]] = {}
    for m in sender.delivered.values():
        per_worker.setdefault(m.worker_id, []).append(m)
    assert sorted(per_worker) == ["w1", "w2"]
    all_ids = {alarm_id(url, c.key) for c in storm}
    for msgs in per_worker.values():
        assert len(msgs) <= 2 + elapsed / window_s  # the first at once, then one per window
        carried = [a for m in msgs for a in m.alarm_ids]
        assert sorted(carried) == sorted(all_ids)  # none lost, none twice
    assert len(sender.delivered) < 100  # 1,000 alerts
