"""A fresh demo run removes the last run's files by name, and nothing else."""

from __future__ import annotations

from pathlib import Path

from gridalarm.state import demo_files, fresh_start


def test_fresh_start_removes_the_demos_files_and_keeps_the_rest(tmp_path: Path) -> None:
    ours = ["cloud.sqlite", "cloud.sqlite-wal", "outbox.sqlite", "fleet.json", "link.secret"]
    for name in ours:
        (tmp_path / name).write_text("x", encoding="utf-8")
    (tmp_path / "district").mkdir()
    (tmp_path / "district" / "devices.csv").write_text("x", encoding="utf-8")
    theirs = ["cloud.sqlite.bak", "notes.txt", "my-outbox.sqlite"]
    for name in theirs:
        (tmp_path / name).write_text("y", encoding="utf-8")
    assert fresh_start(tmp_path) == len(ours) + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(theirs)
    assert demo_files(tmp_path) == []


def test_a_missing_state_dir_is_a_fresh_start(tmp_path: Path) -> None:
    assert fresh_start(tmp_path / "nothing") == 0
    assert not (tmp_path / "nothing").exists()
