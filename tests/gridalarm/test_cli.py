"""The `gridalarm` console script prints errors for people unwrapped, whatever the terminal.

Each case runs the real script as a process (output piped, as a program or a log reads it)
with COLUMNS=40 and a path far longer than that, and looks for the whole message on one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


def long_dir(tmp_path: Path) -> Path:
    folder = tmp_path / ("long-" * 30) / ("deeper-" * 20)
    folder.mkdir(parents=True)
    return folder


def gridalarm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridalarm", *args],
        env={**os.environ, "COLUMNS": "40"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def bad_cloud_config(folder: Path) -> tuple[list[str], str]:
    path = folder / "cloud.yaml"
    path.write_text("mqtt:\n  url: mqtt://127.0.0.1:1883\nbogus_field: 1\n", encoding="utf-8")
    return ["cloud", "alarms", "--config", str(path)], f"{path}:3: bogus_field: Extra inputs"


def bad_rule(folder: Path) -> tuple[list[str], str]:
    path = folder / "broken.yaml"
    path.write_text("rules:\n  - id: x\n    kind: nonsense\n", encoding="utf-8")
    return ["rules", "check", str(folder)], f"{path}:3: rules[0].kind: unknown kind 'nonsense'"


def bad_recording(folder: Path) -> tuple[list[str], str]:
    path = folder / "bad[1].gz"  # brackets: not Rich markup either
    path.write_bytes(b"not a recording")
    return ["replay", str(path), "--no-progress"], f"error: {path}: not a gzip file"


def bad_speed(folder: Path) -> tuple[list[str], str]:
    value = "x" * 120
    return (
        ["replay", str(folder / "r.gz"), "--speed", value],
        f"Error: Invalid value: '{value}': expected max or a number",
    )


@pytest.mark.parametrize("case", [bad_cloud_config, bad_rule, bad_recording, bad_speed])
def test_an_error_is_one_line_however_long_and_however_narrow_the_terminal(
    tmp_path: Path, case: Callable[[Path], tuple[list[str], str]]
) -> None:
    args, message = case(long_dir(tmp_path))
    assert len(message) > 120
    result = gridalarm(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert any(message in line for line in lines), f"not on one line in stderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr
