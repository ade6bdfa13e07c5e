"""`gridalarm cloud run` fails fast: every input is checked before anything is opened, written
or listened on; every problem is one line (file:line: field); a busy port is one line; exit 2.
Run as a real process, the way systemd runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gridalarm.brokers import free_port

BROKEN_LIFECYCLE = """\
sla:
  critical: {ack_s: 60, on_site_s: 600, resolve_s: 3600}
  danger: {ack_s: 60, on_site_s: 600, resolve_s: 3600}
  warning: {ack_s: 60, on_site_s: 600, resolve_s: 3600}
  info: {ack_s: -5, on_site_s: 600, resolve_s: 3600}
policies:
  standard:
    steps:
      - {wait_s: 0, target: nobody_in_particular}
policy_by_severity: {critical: standard, danger: standard, warning: standard, info: standard}
"""
BAD_WORKERS = """\
id,name,phone,locale,role,community,grids,push_subscription
w-1,陈丽,+8613800000001,zh-CN,worker,c-1,grid-1,
w-2,王强,not-a-phone,en,worker,c-1,grid-1,
"""


def run_cloud(directory: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "GRIDALARM_"))}
    return subprocess.run(
        [sys.executable, "-m", "gridalarm", "cloud", "run", "--config", "cloud.yaml"],
        cwd=directory,
        env={**clean, "COLUMNS": "40", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def held_ports() -> Iterator[tuple[int, int]]:
    """Two loopback ports this test holds: a worker that tried to listen would say so."""
    held = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", free_port()))
        s.listen(1)
        held.append(s)
    try:
        yield held[0].getsockname()[1], held[1].getsockname()[1]
    finally:
        for s in held:
            s.close()


def write_config(directory: Path, http: int, metrics: int, **dispatch: object) -> None:
    config = {
        "mqtt": {"url": "mqtt://127.0.0.1:1"},
        "database_url": "sqlite:///cloud.sqlite",
        "sink": {"kind": "sqlite", "path": "readings.sqlite"},
        "metrics_listen": f"127.0.0.1:{metrics}",
        "dispatch": {"http_listen": f"127.0.0.1:{http}", **dispatch},
    }
    (directory / "cloud.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


def test_every_problem_is_reported_at_once_and_nothing_is_opened(
    tmp_path: Path, held_ports: tuple[int, int]
) -> None:
    http, metrics = held_ports
    (tmp_path / "lifecycle.yaml").write_text(BROKEN_LIFECYCLE, encoding="utf-8")
    district = tmp_path / "district"
    district.mkdir()
    (district / "workers.csv").write_text(BAD_WORKERS, encoding="utf-8")
    write_config(tmp_path, http, metrics, lifecycle="lifecycle.yaml", registry_dir="district")
    before = sorted(p.name for p in tmp_path.rglob("*"))

    result = run_cloud(
        tmp_path,
        {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "",
         "TWILIO_FROM_NUMBER": "+15005550006"},
    )  # fmt: skip

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    # files are named as the config names them, relative to where the worker runs
    assert any(line.startswith("lifecycle.yaml:5: sla.info.ack_s:") for line in lines), lines
    assert any(
        line.startswith("lifecycle.yaml:9: policies.standard.steps[0].target:") for line in lines
    ), lines
    assert any(line.startswith("district/workers.csv:3: phone:") for line in lines), lines
    assert any("TWILIO_AUTH_TOKEN" in line and line.startswith("environment") for line in lines)
    assert f":{http} is in use" not in result.stderr, "it got as far as listening"
    assert f":{metrics} is in use" not in result.stderr, "it got as far as listening"
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "a file was created"


def test_a_busy_port_is_one_line_and_nothing_is_created(
    tmp_path: Path, held_ports: tuple[int, int]
) -> None:
    http, _ = held_ports
    write_config(tmp_path, http, free_port())

    result = run_cloud(tmp_path, {})

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"gridalarm cloud: 127.0.0.1:{http} is in use (Address already in use); "
        "set dispatch.http_listen in the cloud config"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cloud.yaml"]


def test_an_empty_twilio_token_alone_is_refused(tmp_path: Path) -> None:
    """An empty token would check inbound SMS signatures against an empty key."""
    write_config(tmp_path, free_port(), free_port())

    result = run_cloud(tmp_path, {"TWILIO_AUTH_TOKEN": ""})

    assert result.returncode == 2
    assert "environment: TWILIO_AUTH_TOKEN: empty or missing" in result.stderr
    assert not (tmp_path / "cloud.sqlite").exists()


def test_a_part_that_cannot_work_ends_the_worker_with_one_line_and_exit_1(
    tmp_path: Path,
) -> None:
    write_config(tmp_path, free_port(), free_port())
    config = yaml.safe_load((tmp_path / "cloud.yaml").read_text())
    config["database_url"] = f"sqlite:///{tmp_path}/no/such/folder/cloud.sqlite"
    (tmp_path / "cloud.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")

    result = run_cloud(tmp_path, {})

    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gridalarm cloud: stopped: OperationalError:"), last
    assert "unable to open database file" in last
