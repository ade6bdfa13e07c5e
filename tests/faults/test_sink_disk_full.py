"""Fault 8: the disk holding the SQLite readings sink full (a small tmpfs, filled from here):
alarms go on, readings wait in the sink's buffer, and every one is written once there is room."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridalarm.brokers import Mosquitto
from tests.faults.durations import LENGTH
from tests.faults.loop import fault_loop
from tests.faults.report import Row
from tests.support import need_service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(LENGTH.timeout_s(LENGTH.disk_full_s))]
SIZE = "8m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of SIZE mounted on a fresh folder; unmounted afterwards."""
    mount = tmp_path / "sinkdisk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        need_service(f"a tmpfs mount (root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def fill(folder: Path) -> Path:
    """Write a file until the disk takes not one more byte."""
    path = folder / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    chunk = 1 << 16
    try:
        while chunk:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                chunk //= 2  # the last few pages too
    finally:
        os.close(fd)
    return path


def stored(path: Path) -> set[tuple[str, float]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return set(conn.execute("SELECT device, ts FROM readings"))


async def test_sink_disk_full(
    broker: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault_table: list[Row],
    small_disk: Path,
) -> None:
    readings = small_disk / "readings.sqlite"
    sink = {"kind": "sqlite", "path": str(readings)}
    async with fault_loop(broker, tmp_path, monkeypatch, sink=sink) as loop:
        loop.begin()
        filler = fill(small_disk)
        loop.field_event("smk-0001", "smoke")
        loop.field_event("mh-0001", "tilt")
        await loop.hold(LENGTH.disk_full_s)
        filler.unlink()
        wanted = loop.published_readings()
        fault = f"readings sink's disk full {LENGTH.disk_full_s:g} s"
        row = await loop.outcome(8, fault, lambda: wanted <= stored(readings))
    fault_table.append(row)
    assert row.ok, "\n".join(row.problems)
