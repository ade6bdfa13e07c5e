"""`sim fleet-check` reads the cloud's dedup and counts checkpoints (one worker's rows or one per
partition), written here by the cloud's own commit_checkpoint into a real SQLite database."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from cloud.database import open_database
from cloud.ingest.checkpoint import commit_checkpoint
from gridalarm.fleetcheck import check_fleet, report_lines
from tests.postgres import find_bin, postgres_server
from tests.support import need_service
from wire.dedup import SeqTracker


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    yield engine
    engine.dispose()


def seen(**numbers: list[int]) -> dict[str, Any]:
    """A dedup checkpoint of a tracker that saw these numbers per gateway (gw_0 → gw-0)."""
    tracker = SeqTracker()
    for gateway, seqs in numbers.items():
        for seq in seqs:
            tracker.first_time(gateway.replace("_", "-"), seq)
    return tracker.snapshot()


def upto(n: int) -> list[int]:
    return list(range(1, n + 1))


def test_partitions_that_saw_everything_once_pass(db: Engine) -> None:
    commit_checkpoint(
        db, [], {"dedup.p0": seen(gw_0=upto(10)), "counts.p0": {"data": 9, "event": 1}}
    )
    commit_checkpoint(
        db, [], {"dedup.p1": seen(gw_1=upto(5)), "counts.p1": {"data": 5, "status": 2}}
    )
    commit_checkpoint(db, [], {"engine_base": {"x": 1}, "dedupe": seen(gw_0=[99])})  # not ours
    result = check_fleet(db, {"gw-0": 10, "gw-1": 5})
    assert result.ok, report_lines(result)
    assert result.rows == ["counts.p0", "counts.p1", "dedup.p0", "dedup.p1"]
    assert [(g.gateway, g.seen, g.missing) for g in result.gateways] == [
        ("gw-0", 10, []),
        ("gw-1", 5, []),
    ]
    assert result.handled == 15 and result.doubled == 0
    assert report_lines(result)[-2:] == [
        "counts say 15 data+event messages handled: none doubled",
        "OK",
    ]


def test_gaps_a_short_tail_and_numbers_beyond_what_was_published_fail(db: Engine) -> None:
    commit_checkpoint(db, [], {"dedup": seen(gw_0=[1, 2, 3, 6, 7, 8], gw_1=upto(7), gw_9=upto(3))})
    result = check_fleet(db, {"gw-0": 10, "gw-1": 5, "gw-2": 4})
    by_gateway = {g.gateway: g for g in result.gateways}
    assert by_gateway["gw-0"].missing == [(4, 5), (9, 10)]
    assert by_gateway["gw-0"].seen == 6
    assert by_gateway["gw-1"].beyond == 7 and not by_gateway["gw-1"].missing
    assert by_gateway["gw-2"].missing == [(1, 4)] and by_gateway["gw-2"].seen == 0
    assert result.others == ["gw-9"]
    assert not result.ok
    lines = report_lines(result)
    assert "gw-0: published 1..10, seen 6; missing 4-5, 9-10" in lines
    assert "gw-1: published 1..5, seen 5; seen up to 7, beyond what was published" in lines
    assert "no counts checkpoint: doubles not checked" in lines
    assert lines[-1] == "FAILED"


def test_counts_above_the_numbers_published_mean_some_were_handled_twice(db: Engine) -> None:
    commit_checkpoint(db, [], {"dedup": seen(gw_0=upto(4)), "counts": {"data": 4, "event": 1}})
    result = check_fleet(db, {"gw-0": 4})
    assert all(g.ok for g in result.gateways)
    assert result.doubled == 1 and not result.ok
    assert "counts say 5 data+event messages handled: +1 against" in report_lines(result)


def test_a_gateway_seen_in_two_rows_is_merged(db: Engine) -> None:
    # a database that ran single-worker first, then partitioned
    commit_checkpoint(db, [], {"dedup": seen(gw_0=upto(3)), "dedup.p3": seen(gw_0=[4, 5])})
    result = check_fleet(db, {"gw-0": 5})
    assert result.gateways[0].ok and result.gateways[0].seen == 5


def test_the_check_reads_partition_rows_on_postgresql() -> None:
    if find_bin() is None:
        need_service("PostgreSQL (apt-get install postgresql)")
    with postgres_server() as url:
        db = open_database(url)
        try:
            commit_checkpoint(db, [], {"dedup.p0": seen(gw_0=upto(6)), "counts.p0": {"data": 6}})
            commit_checkpoint(db, [], {"dedup.p1": seen(gw_1=[1, 3])})
            result = check_fleet(db, {"gw-0": 6, "gw-1": 3})
        finally:
            db.dispose()
    assert [g.missing for g in result.gateways] == [[], [(2, 2)]]
    assert not result.ok


def test_the_command_exits_1_and_names_what_is_missing(db: Engine, tmp_path: Path) -> None:
    commit_checkpoint(db, [], {"dedup.p0": seen(gw_0=[1, 2, 4])})
    (tmp_path / "fleet.json").write_text('{"gw-0": 4}')
    database = str(tmp_path / "cloud.sqlite")
    run = subprocess.run(
        [sys.executable, "-m", "gridalarm", "sim", "fleet-check", "--seq-file",
         str(tmp_path / "fleet.json"), "--database", database],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert run.stdout.splitlines()[0] == "gw-0: published 1..4, seen 3; missing 3"
    assert run.stdout.splitlines()[-1] == "FAILED"
