"""Fault 7: the SMS provider answers 500 for a while, then answers again but slowly (5 s):
every escalation step still reaches its person once (by SMS or the next channel), never twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridalarm.brokers import Mosquitto
from tests.faults.durations import LENGTH, SLOW_SMS_ANSWER_S
from tests.faults.loop import fault_loop
from tests.faults.report import Row

HELD_S = LENGTH.sms_failing_s + LENGTH.sms_slow_s
pytestmark = [pytest.mark.integration, pytest.mark.timeout(LENGTH.timeout_s(HELD_S))]


async def test_sms_provider_failing_then_slow(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault_table: list[Row]
) -> None:
    async with fault_loop(broker, tmp_path, monkeypatch) as loop:
        loop.begin()
        loop.twilio.fail_all(500)
        loop.field_event("smk-0001", "smoke")
        await loop.hold(LENGTH.sms_failing_s)
        loop.twilio.delay_all(SLOW_SMS_ANSWER_S)
        loop.field_event("mh-0001", "tilt")  # its steps meet the slow answers
        await loop.hold(LENGTH.sms_slow_s)
        loop.twilio.heal()
        fault = (
            f"SMS provider 500 for {LENGTH.sms_failing_s:g} s, "
            f"then {SLOW_SMS_ANSWER_S:g} s answers for {LENGTH.sms_slow_s:g} s"
        )
        row = await loop.outcome(7, fault)
    fault_table.append(row)
    assert row.ok, "\n".join(row.problems)
