"""The lifecycle honours the rule's notify: page at once, summary grouped, board silent."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from cloud.dispatch.texts import NotifyRenderer
from cloud.ingest.pipeline import to_change
from cloud.lifecycle import Lifecycle, OutboxState, PlainRenderer, State
from cloud.lifecycle.outbox import make_summaries, next_wake
from cloud.lifecycle.steps import StepContext, rearm
from cloud.lifecycle.tables import open_lifecycle_db
from cloud.notify import LinkSigner
from cloud.registry.model import Registry
from rules import DeviceInfo, Engine, library_texts, parse_ruleset
from tests.cloud.test_lifecycle_fixtures import (
    CONFIG,
    T0,
    Clock,
    RankedDispatcher,
    alarm_id,
    change,
    commit,
    config,
    events_of,
    lifecycle_row,
    outbox_rows,
    steps_of,
)
from wire.messages import EventMessage

WINDOW_S = CONFIG["grouping"]["window_s"]


def raise_one(url: str, life: Lifecycle, key: str, **kw: str) -> int:
    c = change(key, severity="warning", clears="auto", **kw)
    commit(url, [c])
    life.apply_changes([c])
    return alarm_id(url, key)


def summarise(life: Lifecycle, now: float) -> int:
    with life.db.begin() as conn:
        return make_summaries(conn, life.ctx.renderer, now, WINDOW_S)


def test_page_goes_out_at_once(url: str, life: Lifecycle) -> None:
    aid = raise_one(url, life, "smk-1/smoke-heat", notify="page")
    (msg,) = outbox_rows(url)
    assert (msg.alarm_id, msg.state, msg.kind) == (aid, OutboxState.PENDING, "alert")
    assert lifecycle_row(url, aid).state == State.NOTIFIED


def test_summary_waits_for_the_worker_next_summary_and_goes_in_it(
    url: str, life: Lifecycle, clock: Clock
) -> None:
    aid = raise_one(
        url, life, "mh-1/manhole-low-battery", notify="summary", category="device_fault"
    )
    (held,) = outbox_rows(url)
    assert (held.worker_id, held.state, held.next_attempt_at) == ("w1", "held", T0 + WINDOW_S)
    (ev,) = events_of(url, aid, "notified")  # chosen, audited; the message waits
    assert json.loads(ev.detail)["notify"] == "summary"
    with life.db.connect() as conn:
        assert next_wake(conn) == T0 + WINDOW_S  # the sender wakes for it, no sooner
    assert summarise(life, T0 + WINDOW_S - 1) == 0
    clock.now = T0 + WINDOW_S
    assert summarise(life, clock.now) == 1
    summary = next(m for m in outbox_rows(url) if m.kind == "summary")
    assert (summary.state, json.loads(summary.alarm_ids)) == ("pending", [aid])
    assert [m.state for m in outbox_rows(url) if m.kind == "alert"] == ["grouped"]


def test_a_summarised_alarm_never_holds_back_a_page(url: str, life: Lifecycle) -> None:
    raise_one(url, life, "mh-1/manhole-low-battery", notify="summary")
    raise_one(url, life, "mh-2/manhole-displaced", notify="page", category="manhole")
    states = {(m.alarm_id, m.state) for m in outbox_rows(url)}
    assert states == {(alarm_id(url, "mh-1/manhole-low-battery"), "held"),
                      (alarm_id(url, "mh-2/manhole-displaced"), "pending")}  # fmt: skip


def test_a_summary_of_summarised_alarms_leaves_the_page_window_shut(
    url: str, life: Lifecycle, clock: Clock
) -> None:
    raise_one(url, life, "mh-1/manhole-low-battery", notify="summary")
    clock.now = T0 + WINDOW_S
    summarise(life, clock.now)
    aid = raise_one(url, life, "mh-2/manhole-displaced", notify="page")
    assert [m.state for m in outbox_rows(url) if m.alarm_id == aid] == ["pending"]
    raise_one(url, life, "mh-3/manhole-low-battery", notify="summary")
    clock.now += WINDOW_S
    summarise(life, clock.now)
    ids = sorted(m.id for m in outbox_rows(url) if m.kind == "summary")
    assert ids == ["sum-w1-1", "sum-w1-2"]  # numbered on: one id per summary, never reused


def test_board_stores_the_alarm_and_tells_nobody(url: str, life: Lifecycle, clock: Clock) -> None:
    c = change("fl-1/flood-heavy-rain", severity="critical", notify="board", category="flood")
    commit(url, [c])
    assert life.apply_changes([c]) == []  # no timers
    assert life.apply_changes([c]) == []  # a repeated batch: nothing again
    aid = alarm_id(url, c.key)
    row = lifecycle_row(url, aid)
    assert (row.state, row.notify, row.category, row.next_index) == (
        "raised",
        "board",
        "flood",
        None,
    )
    assert outbox_rows(url) == [] and steps_of(url, aid) == []
    assert [e.kind for e in events_of(url, aid)] == ["raise", "board_only"]
    assert life.timers() == []
    action = life.acknowledge(aid, "desk-officer")
    (timeout,) = action.timers
    clock.now = timeout.due_at
    with life.db.begin() as conn:  # not on site in time: a board alarm calls nobody else
        assert rearm(conn, life.config, aid, timeout.token, clock.now) is None
    assert outbox_rows(url) == []


def test_a_confirmation_that_pages_starts_the_chain_of_a_board_alarm(
    url: str, life: Lifecycle
) -> None:
    raised = change("smk-1/smoke-prealarm", severity="warning", notify="board")
    confirm = change("smk-1/smoke-prealarm", "confirm", severity="warning", notify="page")
    commit(url, [raised])
    life.apply_changes([raised])
    commit(url, [confirm])
    life.apply_changes([confirm])
    life.apply_changes([confirm])  # again: already paged, nothing more
    aid = alarm_id(url, raised.key)
    assert lifecycle_row(url, aid).notify == "page"
    assert [m.state for m in outbox_rows(url)] == ["pending"]
    assert [e.kind for e in events_of(url, aid)] == [
        "raise", "board_only", "confirm", "notify_raised", "notified",
    ]  # fmt: skip


def test_the_rule_meaning_travels_from_the_engine_to_the_text(url: str, life: Lifecycle) -> None:
    engine = Engine(parse_ruleset(library_texts()))
    dev = DeviceInfo("mh-0007", "gw-1", "manhole")
    msg = EventMessage(gw="gw-1", dev="mh-0007", seq=1, ts=T0, event="low_battery", active=True)
    changes = [to_change(t) for t in engine.on_event(msg, dev)]
    assert [(c.kind, c.category, c.notify) for c in changes] == [
        ("raise", "device_fault", "summary")
    ]
    renderer = NotifyRenderer(LinkSigner("0123456789abcdef-link-secret"), "https://g.cn",
                              Registry(), {"mh-0007": dev}, clock=lambda: 1.8e9)  # fmt: skip
    life.ctx = StepContext(life.config, RankedDispatcher(["w1"]), renderer)
    commit(url, changes)
    life.apply_changes(changes)
    (held,) = outbox_rows(url)
    assert held.state == "held"
    assert held.text.startswith("【街道大脑】井盖传感器电量低 ")


def test_databases_from_before_meaning_get_the_columns_on_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = sa.create_engine(url)
    with old.begin() as conn:  # the alarms table as an older release created it
        conn.exec_driver_sql(
            "CREATE TABLE alarms (id INTEGER PRIMARY KEY, key VARCHAR(160) NOT NULL,"
            " rule_id VARCHAR(64) NOT NULL, device VARCHAR(64), gateway VARCHAR(64) NOT NULL,"
            " severity VARCHAR(16) NOT NULL, state VARCHAR(16) NOT NULL,"
            " title_en VARCHAR(200) NOT NULL, title_zh VARCHAR(200) NOT NULL,"
            " clears VARCHAR(8) NOT NULL, confirmed BOOLEAN NOT NULL, raised_ts FLOAT NOT NULL,"
            " updated_ts FLOAT NOT NULL, cleared_ts FLOAT)"
        )
        conn.exec_driver_sql(
            "INSERT INTO alarms VALUES (1, 'smk-9/smoke-fire', 'smoke-fire', 'smk-9', 'gw-1',"
            " 'critical', 'open', 'Suspected fire', '疑似火警', 'manual', 0, 1.0, 1.0, NULL)"
        )
    old.dispose()
    commit(url, [change("mh-1/manhole-low-battery", notify="summary", category="device_fault")])
    ctx = StepContext(config(), RankedDispatcher(["w1", "w2"]), PlainRenderer())
    life = Lifecycle(open_lifecycle_db(url), ctx, Clock())
    life.adopt_orphans()
    before = lifecycle_row(url, 1)  # raised before rules said what they mean: paged, as then
    assert (before.notify, before.category, before.state) == ("page", None, "notified")
    after = lifecycle_row(url, alarm_id(url, "mh-1/manhole-low-battery"))
    assert (after.notify, after.category) == ("summary", "device_fault")
