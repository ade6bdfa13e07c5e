"""The alarm lifecycle on a real SQLite file: transitions, refusals, SLA, clears, counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.ingest.pipeline import to_change
from cloud.lifecycle import (
    AlarmDesk,
    ConfigError,
    IllegalTransition,
    Lifecycle,
    Outcome,
    State,
    UnknownAlarm,
    load_config,
)
from cloud.lifecycle.overdue import refresh
from cloud.lifecycle.rule_alarms import alarms
from cloud.lifecycle.steps import StepContext
from rules import DeviceInfo, Engine, library_texts, parse_ruleset
from tests.cloud.test_lifecycle_fixtures import (
    T0,
    Clock,
    RankedDispatcher,
    RecordingSender,
    alarm_id,
    change,
    commit,
    config,
    events_of,
    lifecycle_row,
    outbox_rows,
    rows,
    write_config,
)
from tests.support import until


def raise_one(url: str, life: Lifecycle, key: str = "smk-1/smoke-fire", **kw: str) -> int:
    c = change(key, **kw)
    commit(url, [c])
    life.apply_changes([c])
    return alarm_id(url, key)


def test_a_raise_notifies_the_nearest_at_once_fanned_out_by_severity(url: str, life: Lifecycle):
    aid = raise_one(url, life)
    row = lifecycle_row(url, aid)
    assert row.state == State.NOTIFIED
    assert sorted(m.worker_id for m in outbox_rows(url)) == ["w1", "w2"]  # critical: two
    (ev,) = events_of(url, aid, "notified")
    assert json.loads(ev.detail)["workers"] == ["w1", "w2"]
    assert row.next_seq == 1 and row.next_index == 1


def test_the_happy_path_writes_one_audit_event_per_transition(
    url: str, life: Lifecycle, clock: Clock
):
    aid = raise_one(url, life)
    clock.now += 30
    assert life.acknowledge(aid, "w1", channel="sms", note="on my way").result.changed
    clock.now += 300
    assert life.arrive(aid, "w1", channel="page").result.changed
    clock.now += 600
    res = life.resolve(aid, "w1", Outcome.REAL, channel="page", note="pan fire, put out")
    assert res.result.changed and res.close_key == "smk-1/smoke-fire"
    history = events_of(url, aid)
    assert [e.kind for e in history] == ["raise", "notified", "acknowledged", "on_site", "resolved"]
    ack = history[2]
    assert (ack.actor, ack.ts) == ("w1", T0 + 30)
    assert json.loads(ack.detail) == {
        "channel": "sms", "from": "notified", "note": "on my way"
    }  # fmt: skip
    assert json.loads(history[4].detail)["outcome"] == "real"
    row = lifecycle_row(url, aid)
    assert (row.state, row.outcome, row.resolved_by) == ("resolved", "real", "w1")
    assert rows(url, alarms.select())[0].state == "resolved"  # the key may raise anew


def test_repeats_change_nothing_and_say_so(url: str, life: Lifecycle):
    aid = raise_one(url, life)
    life.acknowledge(aid, "w1")
    again = life.acknowledge(aid, "w1").result
    other = life.acknowledge(aid, "w2").result
    assert (again.changed, again.detail) == (False, "already acknowledged by w1")
    assert (other.changed, other.detail) == (False, "already acknowledged by w1")
    life.resolve(aid, "w1", Outcome.FALSE_ALARM)
    twice = life.resolve(aid, "w1", Outcome.FALSE_ALARM).result
    assert (twice.changed, twice.detail) == (False, "already resolved as false_alarm")
    assert len(events_of(url, aid, "acknowledged")) == 1
    assert len(events_of(url, aid, "resolved")) == 1


@pytest.mark.parametrize(
    ("setup", "action", "message"),
    [
        ([], lambda lc, a: lc.arrive(a, "w1"), "cannot arrive from state notified"),
        (["resolve"], lambda lc, a: lc.acknowledge(a, "w1"), "cannot acknowledge"),
        (["resolve"], lambda lc, a: lc.arrive(a, "w1"), "it is resolved"),
        (
            ["resolve"],
            lambda lc, a: lc.resolve(a, "w1", Outcome.REAL),
            "cannot resolve as real from state resolved: resolved as test",
        ),
    ],
)
def test_illegal_transitions_are_refused_with_a_clear_error(url, life, setup, action, message):
    aid = raise_one(url, life)
    if setup:
        life.resolve(aid, "w1", Outcome.TEST)
    before = events_of(url, aid)
    with pytest.raises(IllegalTransition, match=message):
        action(life, aid)
    assert events_of(url, aid) == before


def test_an_unknown_alarm_is_refused(life: Lifecycle):
    with pytest.raises(UnknownAlarm, match="alarm 999"):
        life.acknowledge(999, "w1")


def test_sla_overdue_is_computed_stored_and_audited_once(url: str, life: Lifecycle, clock: Clock):
    aid = raise_one(url, life)  # critical: ack 600 s, resolve 3600 s
    assert refresh(life.db, clock.now + 599) == (0, T0 + 600)
    flipped, nxt = refresh(life.db, clock.now + 601)
    assert (flipped, nxt) == (1, T0 + 3600)
    assert refresh(life.db, clock.now + 602)[0] == 0  # flagged once
    row = lifecycle_row(url, aid)
    assert (row.overdue, row.overdue_ack, row.overdue_resolve) == (True, True, False)
    clock.now += 700
    life.acknowledge(aid, "w1")
    assert lifecycle_row(url, aid).overdue  # sticky: the KPI counts the breach
    assert refresh(life.db, T0 + 3601)[0] == 1
    (ack_late, resolve_late) = events_of(url, aid, "overdue")
    assert json.loads(ack_late.detail) == {"due_at": T0 + 600, "sla": "acknowledge"}
    assert json.loads(resolve_late.detail)["sla"] == "resolve"


def test_acknowledging_in_time_is_not_overdue(url: str, life: Lifecycle, clock: Clock):
    aid = raise_one(url, life)
    clock.now += 10
    life.acknowledge(aid, "w1")
    assert refresh(life.db, T0 + 1000)[0] == 0
    assert not lifecycle_row(url, aid).overdue


def test_an_upgrade_tightens_the_sla(url: str, life: Lifecycle):
    cfg = config(sla__warning={"ack_s": 900, "on_site_s": 900, "resolve_s": 9000})
    life.config = cfg
    life.ctx = StepContext(cfg, life.ctx.dispatcher, life.ctx.renderer)
    aid = raise_one(url, life, "smk-1/smoke-heat", severity="warning", clears="auto")
    assert lifecycle_row(url, aid).ack_due_at == T0 + 900
    up = change("smk-1/smoke-heat", "upgrade", severity="critical", clears="auto")
    commit(url, [up])
    life.apply_changes([up])
    row = lifecycle_row(url, aid)
    assert (row.severity, row.ack_due_at, row.resolve_due_at) == ("critical", T0 + 600, T0 + 3600)


def test_false_alarms_are_counted_per_device(url: str, life: Lifecycle, clock: Clock):
    for n in range(3):
        aid = raise_one(url, life, "smk-kitchen/smoke-fire")
        life.resolve(aid, "w1", Outcome.FALSE_ALARM, note=f"breakfast {n}")
        clock.now += 86_400
    aid = raise_one(url, life, "smk-hall/smoke-fire")
    life.resolve(aid, "w2", Outcome.FALSE_ALARM)
    aid = raise_one(url, life, "smk-shop/smoke-fire")
    life.resolve(aid, "w2", Outcome.REAL)
    assert life.false_alarm_counts() == {"smk-kitchen": 3, "smk-hall": 1}
    assert life.false_alarm_counts(since=T0 + 86_400) == {"smk-kitchen": 2, "smk-hall": 1}


def test_a_sensor_clear_closes_an_auto_alarm(url: str, life: Lifecycle):
    aid = raise_one(url, life, "wl-1/flood-high", severity="danger", clears="auto")
    clear = change("wl-1/flood-high", "clear", severity="danger", clears="auto")
    commit(url, [clear])
    life.apply_changes([clear])
    row = lifecycle_row(url, aid)
    assert (row.state, row.outcome, row.resolved_by) == ("resolved", "real", "sensor")
    assert {m.state for m in outbox_rows(url)} == {"failed"}  # unsent alerts withdrawn


def test_a_sensor_clear_never_closes_a_manual_alarm(url: str, life: Lifecycle):
    aid = raise_one(url, life)
    clear = change("smk-1/smoke-fire", "clear", clears="manual")
    life.apply_changes([clear])
    assert lifecycle_row(url, aid).state == State.NOTIFIED
    (ev,) = events_of(url, aid, "clear_ignored")
    assert ev.actor == "sensor"


def test_a_missed_raise_is_adopted_at_start(url: str, life: Lifecycle):
    commit(url, [change("smk-9/smoke-fire")])  # ingest stored it; the process died before us
    life.adopt_orphans()
    aid = alarm_id(url, "smk-9/smoke-fire")
    assert lifecycle_row(url, aid).state == State.NOTIFIED
    life.adopt_orphans()  # nothing twice
    assert len(events_of(url, aid, "notified")) == 1


def test_config_errors_name_the_file_line_and_field(tmp_path: Path):
    path = write_config(tmp_path / "lifecycle.yaml", config())
    text = path.read_text().replace("target: grid_supervisor", "target: grid_boss")
    path.write_text(text)
    line = text.splitlines().index(
        next(x for x in text.splitlines() if "grid_boss" in x)
    )  # 0-based
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"lifecycle.yaml:{line + 1}: policies.standard.steps[2].target" in str(err.value)


async def test_a_person_resolving_a_manual_alarm_closes_it_in_the_rule_engine(url: str):
    """Real rule engine: a smoke alarm stays open until a person closes it, then can raise anew."""
    from wire.messages import EventMessage

    engine = Engine(parse_ruleset(library_texts()))
    device = DeviceInfo("smk-7", "gw-1", "smoke", "grid-1", "b-1", "c-1", 60.0)
    smoke = EventMessage(gw="gw-1", dev="smk-7", seq=1, ts=T0, event="smoke_alarm", active=True)
    changes = [to_change(t) for t in engine.on_event(smoke, device)]
    assert [c.kind for c in changes] == ["raise"]
    commit(url, changes)
    async with AlarmDesk(
        url,
        config(),
        dispatcher=RankedDispatcher(["w1", "w2"]),
        sender=RecordingSender(),
        close_rule_alarm=engine.close,
        instance="test-engine-close",
    ) as desk:
        desk.on_changes(changes)
        aid = await until(
            lambda: rows(url, lifecycle_alarms_ids()), 5, "the lifecycle took the alarm"
        )
        aid = aid[0][0]
        assert engine.open_alarms()
        await desk.resolve(aid, "w1", Outcome.FALSE_ALARM, channel="sms")
        assert engine.open_alarms() == []  # closed through the injected callback
        assert await desk.stale_engine_keys(["smk-7/smoke-fire"]) == ["smk-7/smoke-fire"]


def lifecycle_alarms_ids():  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    from cloud.lifecycle.tables import lifecycle_alarms

    return sa.select(lifecycle_alarms.c.alarm_id)
