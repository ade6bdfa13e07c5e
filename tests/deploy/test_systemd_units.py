"""The systemd units are valid to systemd itself (`systemd-analyze verify`), the cloud units
wait for the worker's READY and watch it, and the workers' template names each instance."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import need_service

UNITS = Path(__file__).parents[2] / "deploy" / "systemd"
HARDENING = (
    "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "ProtectKernelTunables",
    "ProtectKernelModules", "ProtectControlGroups", "RestrictSUIDSGID", "LockPersonality",
)  # fmt: skip


def verify(folder: Path, copies: dict[str, str]) -> None:
    """Verify our units (installed in *folder* as ``{installed name: shipped file}``) together.

    systemd-analyze checks a template only through an instance of it, so a template is copied
    under an instance name; the units name /opt/gridalarm/.venv, pointed at this checkout's.
    """
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        need_service("systemd-analyze (Debian package systemd)")
    assert analyze is not None
    gridalarm = Path(sys.executable).with_name("gridalarm")
    for installed, shipped in copies.items():
        text = (UNITS / shipped).read_text(encoding="utf-8")
        (folder / installed).write_text(
            text.replace("/opt/gridalarm/.venv/bin/gridalarm", str(gridalarm)), encoding="utf-8"
        )
    result = subprocess.run(
        [analyze, "verify", *(str(folder / name) for name in copies)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    problems = [
        line for line in result.stderr.splitlines()
        if any(name in line for name in copies) and "EnvironmentFile" not in line
    ]  # fmt: skip
    assert result.returncode == 0 and not problems, result.stderr


def settings(name: str) -> dict[str, list[str]]:
    """The unit's ``Key=value`` lines, every value of a key in order."""
    found: dict[str, list[str]] = {}
    text = (UNITS / name).read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


@pytest.mark.parametrize("name", ["gridalarm-cloud.service", "gridalarm-edge.service"])
def test_unit_verifies(tmp_path: Path, name: str) -> None:
    verify(tmp_path, {name: name})


def test_worker_template_and_target_verify(tmp_path: Path) -> None:
    verify(
        tmp_path,
        {
            "gridalarm-cloud@.service": "gridalarm-cloud@.service",
            "gridalarm-cloud@2.service": "gridalarm-cloud@.service",
            "gridalarm-cloud.target": "gridalarm-cloud.target",
        },
    )


@pytest.mark.parametrize("name", ["gridalarm-cloud.service", "gridalarm-cloud@.service"])
def test_cloud_unit_is_notify_with_a_watchdog_and_secrets_from_a_file(name: str) -> None:
    lines = {key: values[0] for key, values in settings(name).items()}  # the secrets file first
    assert lines["Type"] == "notify"
    assert int(lines["WatchdogSec"]) > 0
    assert lines["EnvironmentFile"].startswith("/etc/gridalarm/")
    assert lines["RestartPreventExitStatus"] == "2"
    assert lines["Restart"] == "always"


def test_each_worker_instance_has_its_own_id_and_ports_and_belongs_to_the_target() -> None:
    unit = settings("gridalarm-cloud@.service")
    assert "GRIDALARM_WORKER_ID=%H-%i" in unit["Environment"]
    command = unit["ExecStart"][0].split()
    assert command[command.index("--config") + 1] == "/etc/gridalarm/cloud.yaml"
    ports: dict[str, set[str]] = {}
    for option in ("--http-listen", "--metrics-listen"):
        variable = command[command.index(option) + 1].removeprefix("${").removesuffix("}")
        (template,) = (e.split("=", 1)[1] for e in unit["Environment"] if e.startswith(variable))
        ports[option] = {template.replace("%i", str(n)) for n in range(1, 10)}
        assert len(ports[option]) == 9, option  # instances 1-9 on one host never collide
    assert not ports["--http-listen"] & ports["--metrics-listen"]
    assert unit["PartOf"] == ["gridalarm-cloud.target"]
    assert unit["WantedBy"] == ["gridalarm-cloud.target"]
    assert settings("gridalarm-cloud.target")["WantedBy"] == ["multi-user.target"]


def test_worker_template_is_hardened_like_the_single_worker() -> None:
    single, template = settings("gridalarm-cloud.service"), settings("gridalarm-cloud@.service")
    for key in (*HARDENING, "User", "Group", "StateDirectory", "KillSignal", "TimeoutStopSec"):
        assert template.get(key) == single.get(key), key
