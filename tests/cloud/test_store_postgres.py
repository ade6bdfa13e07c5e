"""The cloud's state on PostgreSQL: the same code as on SQLite (ARCHITECTURE: tested on both)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from cloud.database import open_database
from cloud.ingest.checkpoint import commit_checkpoint, read_checkpoint, read_engine_state
from cloud.ingest.devices import load_devices, upsert_devices
from cloud.lifecycle.rule_alarms import AlarmChange, list_alarms, list_events
from rules import DeviceInfo
from tests.postgres import find_bin, postgres_server
from tests.support import need_service


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if find_bin() is None:
        need_service("PostgreSQL")
    with postgres_server() as url:
        yield url


def change(kind: str, severity: str = "warning", ts: float = 1.0) -> AlarmChange:
    return AlarmChange(
        kind=kind,
        key="fl-1/flood-level",
        rule_id="flood-level",
        device="fl-1",
        gateway="gw-1",
        severity=severity,
        ts=ts,
        title_en="Water level high",
        title_zh="水位偏高",
        category="flood",
        notify="page",
        value=160.0,
        clears="auto",
        detail={"measurement": "level_mm"},
    )


def test_registry_alarms_checkpoints_on_postgres(pg_url: str) -> None:
    db = open_database(pg_url)
    upsert_devices(db, [DeviceInfo("fl-1", "gw-1", "flood", "g1", "", "c1", 60.0)])
    upsert_devices(db, [DeviceInfo("fl-1", "gw-1", "flood", "g2", "", "c1", 30.0)])  # update
    assert load_devices(db)["fl-1"].grid == "g2"
    commit_checkpoint(
        db,
        [change("raise"), change("upgrade", "danger", 2.0)],
        {"engine_base": {"version": 1}, "dedup": {"gw-1": {"w": 2, "a": []}}},
        {"fl-1": {"x": 1}},
    )
    commit_checkpoint(
        db,
        [change("clear", "danger", 3.0)],
        {"dedup": {"gw-1": {"w": 3, "a": []}}},
        {"fl-1": {"x": 2}},
    )
    [alarm] = list_alarms(db)
    assert (alarm["state"], alarm["severity"], alarm["cleared_ts"]) == ("cleared", "danger", 3.0)
    assert [e["kind"] for e in list_events(db)] == ["raise", "upgrade", "clear"]
    assert read_checkpoint(db, "dedup") == {"gw-1": {"w": 3, "a": []}}
    assert read_engine_state(db) == {"version": 1, "devices": {"fl-1": {"x": 2}}}
    # a partition reads its own devices' rows only
    assert read_engine_state(db, devices=["fl-1", "fl-9"])["devices"] == {"fl-1": {"x": 2}}  # type: ignore[index]
    assert read_engine_state(db, devices=["fl-9"]) == {"version": 1, "devices": {}}
    commit_checkpoint(db, [change("raise", ts=4.0)], {})
    assert len(list_alarms(db, open_only=True)) == 1
    with (
        pytest.raises(sa.exc.IntegrityError),
        db.begin() as conn,
    ):  # one open alarm per key, enforced
        conn.execute(
            sa.text(
                "INSERT INTO alarms (key, rule_id, device, gateway, severity, state, title_en,"
                " title_zh, clears, confirmed, raised_ts, updated_ts) VALUES ('fl-1/flood-level',"
                " 'r', 'fl-1', 'gw-1', 'warning', 'open', 't', 't', 'auto', false, 5, 5)"
            )
        )
    db.dispose()
