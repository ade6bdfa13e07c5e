"""The control server and the ``sim`` CLI: in-process with CliRunner, and ``sim run`` for real."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import firmware_sim
from firmware_sim import BusConfig, DeviceConfig, SimConfig, SimulatorSet, Transport
from firmware_sim.cli import app
from firmware_sim.control import ControlServer
from firmware_sim.simset import SerialLine
from firmware_sim.statefile import read_state, remove_state, state_path, write_state

ROOT = Path(firmware_sim.__file__).parent.parent


@pytest.fixture
async def running(
    sims: SimulatorSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SimulatorSet]:
    """The in-process field, published like `sim run` does."""
    monkeypatch.setenv("GRIDALARM_STATE_DIR", str(tmp_path))
    control = ControlServer(sims)
    write_state(state_path(), await control.start(), sims)
    yield sims
    remove_state(state_path())
    await control.aclose()


async def cli(*args: str) -> Result:
    """Run the CLI in a thread so the simulator keeps serving on this loop."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def test_list_json(running: SimulatorSet) -> None:
    result = await cli("list", "--json")
    assert result.exit_code == 0, result.output
    devices = json.loads(result.stdout)
    assert [d["id"] for d in devices] == [d.id for d in running.devices()]
    assert {"id", "type", "transport", "address"} <= set(devices[0])


async def test_list_json_gives_each_serial_bus_its_line_settings(running: SimulatorSet) -> None:
    """A third-party master needs baud, data bits, parity and stop bits to open the port."""
    devices = {d["id"]: d for d in json.loads((await cli("list", "--json")).stdout)}
    line_8n1 = {"baud": 9600, "data_bits": 8, "parity": "N", "stop_bits": 1}
    assert devices["smk-0001"]["serial"] == line_8n1  # rtu
    assert devices["smk-0101"]["serial"] == line_8n1  # ascii
    assert devices["mh-0001"]["serial"] is None  # tcp: no serial line


def test_serial_settings_follow_the_bus_config() -> None:
    config = SimConfig(
        buses=[BusConfig(name="b", transport=Transport.RTU, baud=19200, parity="E", stopbits=2)],
        devices=[DeviceConfig(id="s", type="smoke", transport=Transport.RTU, bus="b")],
    )
    [info] = SimulatorSet(config).devices()
    assert info.serial == SerialLine(baud=19200, data_bits=8, parity="E", stop_bits=2)
    assert str(info.serial) == "19200 8E2"


async def test_list_table(running: SimulatorSet) -> None:
    result = await cli("list")
    assert result.exit_code == 0 and "smk-0001" in result.stdout
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if "-0" in line}
    assert "9600 8N1" in rows["smk-0001"]
    assert "9600 8N1" not in rows["mh-0001"]


async def test_trigger_and_fault(running: SimulatorSet) -> None:
    result = await cli("trigger", "mh-0001", "tilt")
    assert result.exit_code == 0, result.output
    assert running.device("mh-0001").truth()["displaced"] is True
    assert (await cli("fault", "mh-0001", "stuck")).exit_code == 0
    assert running.device("mh-0001").fault == "stuck"
    truth = json.loads((await cli("truth", "mh-0001")).stdout)
    assert truth["tilt_deg"] == running.device("mh-0001").truth()["tilt_deg"]


async def test_unknown_device_or_event_exits_2(running: SimulatorSet) -> None:
    result = await cli("trigger", "smk-9999", "smoke")
    assert result.exit_code == 2 and "smk-9999" in result.output
    result = await cli("trigger", "eb-0001", "smoke")
    assert result.exit_code == 2 and "ebike, camera-fault, clear" in result.output
    assert (await cli("fault", "eb-0001", "melted")).exit_code == 2


def test_no_simulator_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDALARM_STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 3 and "no running simulator" in result.output
    (tmp_path / "sim.json").write_text('{"control": "127.0.0.1:1"}')  # stale
    result = CliRunner().invoke(app, ["trigger", "smk-0001", "smoke"])
    assert result.exit_code == 3 and "stale" in result.output


def test_trigger_help_lists_events_by_type() -> None:
    result = CliRunner().invoke(app, ["trigger", "--help"])
    assert "camera-fault" in result.stdout and "low-battery" in result.stdout


def test_bad_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices:\n  - {id: x, type: toaster, transport: rtu, bus: b}\n")
    result = CliRunner().invoke(app, ["run", "--config", str(bad)])
    assert result.exit_code == 2 and "bad.yaml:2" in result.output


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def test_sim_run_serves_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "GRIDALARM_STATE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware_sim", "run", "--speed", "5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: read_state(tmp_path / "sim.json") is not None, 15, "sim.json")
        listed = subprocess.run(
            [sys.executable, "-m", "firmware_sim", "list", "--json"],
            env=env,
            capture_output=True,
            check=True,
            timeout=30,
        )
        assert "fl-0001" in {d["id"] for d in json.loads(listed.stdout)}
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert b"bus-1" in out and b"simulator stopped" in out
    assert not (tmp_path / "sim.json").exists()
