"""`gridalarm cloud alarms`: the lifecycle's state, who holds an alarm and since when.

The real lifecycle runs on a SQLite file where `gridalarm demo` keeps its database; the CLI
runs as a process from that folder, with no config, and its output is checked as printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cloud.cli import DEMO_DATABASE, DEMO_STATE_DIR
from cloud.lifecycle import Lifecycle, Outcome, PlainRenderer
from cloud.lifecycle.steps import StepContext
from cloud.lifecycle.tables import open_lifecycle_db
from tests.cloud.test_lifecycle_fixtures import RankedDispatcher, alarm_id, change, commit, config

T0 = 1_700_000_000.0


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "40"}  # piped output must not care
    return subprocess.run(
        [sys.executable, "-m", "gridalarm", "cloud", "alarms", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def demo_dir(tmp_path: Path) -> Path:
    """A folder where the demo ran: one alarm taken by SMS, one closed as a false alarm, one
    stored by ingest that the lifecycle has not adopted yet."""
    db_file = tmp_path / DEMO_STATE_DIR / DEMO_DATABASE
    db_file.parent.mkdir(parents=True)
    url = f"sqlite:///{db_file}"
    now = [T0]  # the lifecycle's clock: when each action happened
    ctx = StepContext(config(), RankedDispatcher(["w1", "w2"]), PlainRenderer())
    life = Lifecycle(open_lifecycle_db(url), ctx, lambda: now[0])
    for key in ("smk-1/smoke-fire", "smk-2/smoke-fire"):
        c = change(key)
        commit(url, [c])
        life.apply_changes([c])
    now[0] = T0 + 42
    life.acknowledge(alarm_id(url, "smk-1/smoke-fire"), "w1", channel="sms")
    now[0] = T0 + 50
    life.resolve(alarm_id(url, "smk-2/smoke-fire"), "w2", Outcome.FALSE_ALARM, channel="web")
    commit(url, [change("smk-3/smoke-fire")])  # not adopted: no lifecycle has seen it
    life.db.dispose()
    return tmp_path


def by_device(alarms: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["device"]: a for a in alarms}


def test_json_shows_state_holder_and_since_from_the_demo_database(demo_dir: Path) -> None:
    result = cli(demo_dir, "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    demo_db = str((demo_dir / DEMO_STATE_DIR / DEMO_DATABASE).resolve())
    assert demo_db in body["database"] and demo_db in result.stderr
    alarms = by_device(body["alarms"])
    taken = alarms["smk-1"]
    assert (taken["state"], taken["holder"], taken["acknowledged_by"]) == (
        "acknowledged",
        "w1",
        "w1",
    )
    assert taken["since"] == taken["acknowledged_at"] == T0 + 42
    assert taken["tracked"] and taken["outcome"] is None and taken["resolved_by"] is None
    assert (taken["category"], taken["notify"]) == ("fire", "page")
    closed = alarms["smk-2"]
    assert (closed["state"], closed["outcome"], closed["holder"]) == (
        "resolved",
        "false_alarm",
        "w2",
    )
    assert closed["since"] == T0 + 50
    waiting = alarms["smk-3"]
    assert (waiting["state"], waiting["tracked"], waiting["holder"]) == ("raised", False, None)
    assert set(taken) == set(waiting), "every alarm has the same fields"


def test_open_leaves_out_the_resolved(demo_dir: Path) -> None:
    result = cli(demo_dir, "--json", "--open")
    assert result.returncode == 0, result.stderr
    assert sorted(by_device(json.loads(result.stdout)["alarms"])) == ["smk-1", "smk-3"]


def test_the_table_says_who_took_it_on_one_line_whatever_the_terminal(demo_dir: Path) -> None:
    result = cli(demo_dir)
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if "smk-1" in x)
    assert "acknowledged 已接单" in line and "w1" in line and "疑似火警 / Suspected fire" in line
    line = next(x for x in result.stdout.splitlines() if "smk-2" in x)
    assert "resolved 已完结 (false_alarm 误报)" in line and "w2" in line


def test_without_config_or_demo_database_it_says_what_is_missing(tmp_path: Path) -> None:
    result = cli(tmp_path)
    assert result.returncode == 2
    assert "no demo database" in result.stderr and "演示数据库" in result.stderr
    assert not (tmp_path / DEMO_STATE_DIR).exists(), "a read creates nothing"
