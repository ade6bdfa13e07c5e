"""A worker's hazard report through the lifecycle: one alarm per form, dispatched, closed, told."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from cloud.lifecycle import HazardKind, HazardReport, Lifecycle, Outcome, State
from cloud.lifecycle.reports import hazard_reports
from cloud.lifecycle.rule_alarms import alarms
from tests.cloud.test_lifecycle_fixtures import events_of, lifecycle_row, outbox_rows, rows

REPORT = HazardReport(
    report_id="r-0123456789abcdef", reporter="w3", kind=HazardKind.BLOCKED_EXIT,
    note="3号楼楼道堆满纸箱", lat=24.45, lon=118.08, grid="g-1", community="c-1",
    photos=("ab12.jpg",), locale="en",
)  # fmt: skip


def test_a_report_is_an_alarm_dispatched_like_a_sensors(url: str, life: Lifecycle):
    aid, _timers = life.report(REPORT)
    row = lifecycle_row(url, aid)
    assert row.category == "report" and row.device is None
    assert (row.title_zh, row.title_en) == ("消防通道堵塞", "Blocked fire exit")
    assert row.state == State.NOTIFIED  # the policy's first step ran in the same transaction
    assert {m.worker_id for m in outbox_rows(url)} == {"w1"}  # warning: one worker
    (raised,) = events_of(url, aid, "raise")
    assert raised.actor == "w3"
    assert json.loads(raised.detail)["note"] == "3号楼楼道堆满纸箱"


def test_the_same_form_sent_twice_is_one_report(url: str, life: Lifecycle):
    first, _ = life.report(REPORT)
    again, timers = life.report(REPORT)
    assert again == first and timers == []
    assert len(rows(url, sa.select(hazard_reports))) == 1
    assert len(rows(url, sa.select(alarms))) == 1


def test_closing_it_tells_the_reporter_once_in_their_language(url: str, life: Lifecycle):
    aid, _ = life.report(REPORT)
    life.acknowledge(aid, "w1")
    action = life.resolve(aid, "w1", Outcome.REAL, note="纸箱已清走")
    assert action.close_key is None  # no rule engine alarm behind a report
    life.resolve(aid, "w1", Outcome.REAL)  # a repeat: nothing more
    told = [m for m in outbox_rows(url) if m.worker_id == "w3"]
    assert len(told) == 1
    assert told[0].text.startswith(
        '[Street brain] Your report "Blocked fire exit" is closed (real)'
    )
    assert len(events_of(url, aid, "reporter_told")) == 1


def test_a_report_id_must_be_long_and_url_safe():
    with pytest.raises(ValueError, match="report id"):
        HazardReport(report_id="../../etc", reporter="w3", kind=HazardKind.OTHER)
