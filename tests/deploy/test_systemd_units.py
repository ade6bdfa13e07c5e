"""The systemd units are valid to systemd itself (`systemd-analyze verify`), and the cloud unit
waits for the worker's READY and watches it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import need_service

UNITS = Path(__file__).parents[2] / "deploy" / "systemd"


@pytest.mark.parametrize("name", ["gridalarm-cloud.service", "gridalarm-edge.service"])
def test_unit_verifies(tmp_path: Path, name: str) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        need_service("systemd-analyze (Debian package systemd)")
    assert analyze is not None
    # the unit names /opt/gridalarm/.venv; point it at this checkout's so verify can see it
    gridalarm = Path(sys.executable).with_name("gridalarm")
    text = (UNITS / name).read_text(encoding="utf-8")
    (tmp_path / name).write_text(
        text.replace("/opt/gridalarm/.venv/bin/gridalarm", str(gridalarm)), encoding="utf-8"
    )
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / name)], capture_output=True, text=True, check=False
    )
    problems = [
        line for line in result.stderr.splitlines()
        if name in line and "EnvironmentFile" not in line
    ]  # fmt: skip
    assert result.returncode == 0 and not problems, result.stderr


def test_cloud_unit_is_notify_with_a_watchdog_and_secrets_from_a_file() -> None:
    lines = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in (UNITS / "gridalarm-cloud.service").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert lines["Type"] == "notify"
    assert int(lines["WatchdogSec"]) > 0
    assert lines["EnvironmentFile"].startswith("/etc/gridalarm/")
    assert lines["RestartPreventExitStatus"] == "2"
