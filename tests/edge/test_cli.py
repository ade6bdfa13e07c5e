"""`gridalarm edge` (edge/cli.py): config commands, status, and the bus commands on the simulator.

The bus commands run against firmware_sim in-process (a pty for RTU, a TCP server), served
from a thread with its own event loop, since each CLI command runs its own asyncio.run.
Commands that must run concurrently with the test (run, commission) are subprocesses.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from edge.cli import app
from firmware_sim import ManualClock, SimConfig, SimulatorSet
from gridalarm.brokers import Mosquitto, free_port
from tests.support import wait_until
from wire import EventMessage, encode
from wire.topics import event_topic

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner(env={"COLUMNS": "200"})


def cli(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


# -- the simulator in a thread ------------------------------------------------------------


class SimThread:
    """A SimulatorSet served by its own event loop in a thread, for the whole test."""

    def __init__(self, config: dict[str, Any], clock: ManualClock | None = None) -> None:
        self.config = SimConfig.model_validate(config)
        self.clock = clock
        self.sims: SimulatorSet | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="firmware_sim", daemon=True)

    def __enter__(self) -> SimThread:
        self._thread.start()
        if not self._ready.wait(10):
            pytest.fail("simulator did not start within 10 s")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as err:  # handed to the test thread
            self._error = err
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with SimulatorSet(self.config, clock=self.clock) as sims:
            self.sims = sims
            self._ready.set()
            await self._stop.wait()

    def address(self, bus: str) -> str:
        assert self.sims is not None
        return next(e.address for e in self.sims.endpoints() if e.bus == bus)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run *fn* on the simulator's loop and return its result."""
        assert self._loop is not None

        async def on_loop() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(on_loop(), self._loop).result(5)


SIM_FIELD = {
    "buses": [
        {"name": "line-a", "transport": "rtu", "baud": 19200},
        {"name": "gw-a", "transport": "tcp"},
    ],
    "devices": [
        {"id": "smk-a", "type": "smoke", "transport": "rtu", "bus": "line-a", "unit": 3, "seed": 1},
        {
            "id": "mh-a",
            "type": "manhole",
            "transport": "rtu",
            "bus": "line-a",
            "unit": 7,
            "seed": 2,
        },
        {"id": "fl-a", "type": "flood", "transport": "tcp", "bus": "gw-a", "unit": 1, "seed": 3},
        {"id": "eb-a", "type": "ebike", "transport": "tcp", "bus": "gw-a", "unit": 5, "seed": 4},
    ],
}


@pytest.fixture
def field() -> Iterator[SimThread]:
    with SimThread(SIM_FIELD, clock=ManualClock()) as sim:
        yield sim


def site_yaml(sim: SimThread, broker_url: str = "mqtt://127.0.0.1:1", gw: str = "gw-cli") -> str:
    host_port = sim.address("gw-a").rsplit(":", 1)
    return f"""\
# site under test
gateway_id: {gw}
mqtt:
  url: {broker_url}
buses:
  - id: line-a
    kind: serial
    port: {sim.address("line-a")}
    baud: 19200
  - id: gw-a
    kind: tcp
    host: {host_port[0]}
    port: {host_port[1]}
devices:
  - {{id: smk-a, bus: line-a, unit: 3, profile: smoke, poll_interval_s: 0.2}}
  - {{id: mh-a, bus: line-a, unit: 7, profile: manhole}}
  - {{id: fl-a, bus: gw-a, unit: 1, profile: flood}}
"""


# -- init, validate, profiles -------------------------------------------------------------


def test_init_writes_a_config_that_validates(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    result = cli("init", "--out", path, "--gateway-id", "gw-ladder")
    assert result.exit_code == 0, result.output
    assert "gateway_id: gw-ladder" in path.read_text()
    result = cli("validate", "--config", path)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "OK: 2 buses, 4 devices"


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("mine\n")
    result = cli("init", "--out", path)
    assert result.exit_code == 2
    assert "--force" in result.output
    assert path.read_text() == "mine\n"
    assert cli("init", "--out", path, "--force").exit_code == 0
    assert cli("validate", "--config", path).exit_code == 0


def test_init_rejects_a_bad_gateway_id(tmp_path: Path) -> None:
    result = cli("init", "--out", tmp_path / "g.yaml", "--gateway-id", "no spaces")
    assert result.exit_code == 2
    assert not (tmp_path / "g.yaml").exists()


BROKEN = """\
gateway_id: gw-broken
buses:
  - {id: bus-1, kind: serial, port: /dev/ttyUSB0}
devices:
  - id: dev-1
    bus: bus-1
    unit: %(unit)s
    profile: %(profile)s
  - id: dev-2
    bus: %(bus)s
    unit: 2
    profile: smoke
"""


@pytest.mark.parametrize(
    ("values", "line", "field", "words"),
    [
        ({"unit": 300}, 7, "devices[0].unit", "247"),
        ({"profile": "smokey"}, 8, "devices[0].profile", "unknown profile 'smokey'"),
        ({"bus": "bus-9"}, 10, "devices[1].bus", "unknown bus 'bus-9'"),
    ],
    ids=["bad-unit", "unknown-profile", "unknown-bus"],
)
def test_validate_names_file_line_and_field(
    tmp_path: Path, values: dict[str, Any], line: int, field: str, words: str
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(BROKEN % ({"unit": 1, "profile": "smoke", "bus": "bus-1"} | values))
    result = cli("validate", "--config", path)
    assert result.exit_code == 2
    issue = next(x for x in result.output.splitlines() if x.startswith(f"{path}:"))
    assert issue.startswith(f"{path}:{line}: {field}: "), issue
    assert words in issue

    result = cli("validate", "--config", path, "--json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [(i["line"], i["field"]) for i in report["issues"]] == [(line, field)]


def test_validate_reports_every_cross_check_issue(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(BROKEN % {"unit": 1, "profile": "smokey", "bus": "bus-9"})
    result = cli("validate", "--config", path)
    assert result.exit_code == 2
    assert f"{path}:8: devices[0].profile:" in result.output
    assert f"{path}:10: devices[1].bus:" in result.output


MQTT_URL = """\
gateway_id: gw-url
mqtt:
  url: %(url)s
"""


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://broker.example:1883", "scheme must be mqtt:// or mqtts://"),
        ("mqtt://broker.example:99999", "Port out of range"),
        ("mqtt://broker.example:1883/ga", "no path or query"),
    ],
)
def test_validate_refuses_a_broker_url_that_run_refuses(
    tmp_path: Path, url: str, words: str
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(MQTT_URL % {"url": url})
    result = cli("validate", "--config", path)
    assert result.exit_code == 2, result.output
    issue = next(x for x in result.output.splitlines() if x.startswith(f"{path}:"))
    assert issue.startswith(f"{path}:3: mqtt.url: "), issue
    assert words in issue


def test_validate_reports_schema_and_cross_check_issues_at_once(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        """\
gateway_id: gw-many
mqtt: {url: "http://broker.example", tls: {ca_file: missing-ca.crt}}
buses:
  - {id: bus-1, kind: serial, port: /dev/ttyUSB0}
  - {id: bus-1, kind: serial, port: /dev/ttyUSB1, baud: -5}
devices:
  - {id: dev-1, bus: bus-1, unit: 300, profile: smoke}
  - {id: dev-1, bus: bus-9, unit: 2, profile: smoke}
  - {id: dev-2, bus: bus-1, unit: 3, profile: smokey}
"""
    )
    result = cli("validate", "--config", path, "--json")
    assert result.exit_code == 2
    found = [(i["line"], i["field"]) for i in json.loads(result.stdout)["issues"]]
    assert found == [
        (2, "mqtt.url"),  # schema
        (5, "buses[1].baud"),  # schema
        (5, "buses[1].id"),  # duplicate bus, even though that bus breaks the schema
        (7, "devices[0].unit"),  # schema
        (8, "devices[1].id"),  # duplicate device, reported beside the schema errors
        (8, "devices[1].bus"),
        (9, "devices[2].profile"),
    ]
    text = cli("validate", "--config", path)
    assert f"{path}:8: devices[1].id: duplicate device id 'dev-1'" in text.output
    assert "7 problem(s)" in text.output


def test_validate_checks_the_tls_files_run_would_open(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("not checked here, only that it exists\n")
    path = tmp_path / "gateway.yaml"
    tls = "{ca_file: ca.crt, cert_file: gw.crt}"
    path.write_text(f"gateway_id: gw-tls\nmqtt:\n  url: mqtts://b:8883\n  tls: {tls}\n")
    result = cli("validate", "--config", path)
    assert result.exit_code == 2
    assert f"{path}:4: mqtt.tls.cert_file: no such file: {tmp_path / 'gw.crt'}" in result.output
    assert f"{path}:4: mqtt.tls: cert_file and key_file go together" in result.output
    assert "ca_file" not in result.output  # relative to the config file's folder: found


def test_validate_json_ok_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    cli("init", "--out", path)
    result = cli("validate", "--config", path, "--json")
    assert json.loads(result.stdout) == {"ok": True, "buses": 2, "devices": 4}
    result = cli("validate", "--config", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_profiles_lists_measurements_with_units() -> None:
    result = cli("profiles", "--json")
    assert result.exit_code == 0
    profiles = {p["name"]: p for p in json.loads(result.stdout)}
    assert {"smoke", "flood", "manhole", "ebike", "smoke-ascii"} <= set(profiles)
    units = {m["name"]: m["unit"] for m in profiles["smoke"]["measurements"]}
    assert units["temperature_c"] == "°C"
    assert "test_button" in profiles["smoke"]["events"]
    table = cli("profiles")
    assert table.exit_code == 0
    assert "temperature_c [°C]" in table.output


# -- add-device -----------------------------------------------------------------------------


def test_add_device_appends_and_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    cli("init", "--out", path)
    before = path.read_text() + "# a closing remark of the installer\n"
    path.write_text(before)
    result = cli(
        "add-device",
        "--config",
        path,
        "--id",
        "smk-0042",
        "--bus",
        "bus-1",
        "--unit",
        "42",
        "--profile",
        "smoke",
        "--poll-interval-s",
        "2.5",
    )
    assert result.exit_code == 0, result.output
    after = path.read_text()
    block = (
        "  - id: smk-0042\n    bus: bus-1\n    unit: 42\n    profile: smoke\n"
        "    poll_interval_s: 2.5\n"
    )
    # inserted right after the last device; every other line (and comment) as it was
    assert after == before.replace("    profile: ebike\n", "    profile: ebike\n" + block)
    assert cli("validate", "--config", path).output.strip() == "OK: 2 buses, 5 devices"


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        ("devices: []  # none yet\n", "devices: # none yet\n  - id: d-1\n"),
        ("devices:\n", "devices:\n  - id: d-1\n"),
        ("", "devices:\n  - id: d-1\n"),
        (
            "devices:\n- {id: d-0, bus: b, unit: 1, profile: smoke}\n# end\n",
            "- {id: d-0, bus: b, unit: 1, profile: smoke}\n- id: d-1\n  bus: b\n",
        ),
    ],
    ids=["empty-flow", "null", "absent", "indentless"],
)
def test_add_device_handles_each_shape_of_the_list(
    tmp_path: Path, devices: str, expected: str
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"gateway_id: gw-1\nbuses:\n  - {{id: b, kind: serial, port: /dev/x}}\n{devices}"
    )
    result = cli(
        "add-device", "-c", path, "--id", "d-1", "--bus", "b", "--unit", "2", "--profile", "smoke"
    )
    assert result.exit_code == 0, result.output
    assert expected in path.read_text()
    assert "# end" in path.read_text() or "# end" not in devices


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--bus", "bus-9", "--unit", "9", "--profile", "smoke"], "devices[4].bus: unknown bus"),
        (
            ["--bus", "bus-1", "--unit", "9", "--profile", "smokey"],
            "devices[4].profile: unknown profile",
        ),
        (
            ["--bus", "bus-1", "--unit", "1", "--profile", "smoke", "--id", "smk-0001"],
            "duplicate device id",
        ),
        (["--bus", "bus-1", "--unit", "300", "--profile", "smoke"], "add-device: unit:"),
    ],
    ids=["unknown-bus", "unknown-profile", "duplicate-id", "bad-unit"],
)
def test_add_device_rolls_back_an_invalid_device(
    tmp_path: Path, args: list[str], words: str
) -> None:
    path = tmp_path / "gateway.yaml"
    cli("init", "--out", path)
    before = path.read_bytes()
    ident = [] if "--id" in args else ["--id", "new-1"]
    result = cli("add-device", "--config", path, *ident, *args)
    assert result.exit_code == 2
    assert words in result.output
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["gateway.yaml"]


# -- status ---------------------------------------------------------------------------------


def _status_site(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    cli("init", "--out", path)
    return path


def _write_status(tmp_path: Path, age_s: float) -> None:
    (tmp_path / "var").mkdir(exist_ok=True)
    status = {
        "gateway": "gw-0001",
        "pid": 4242,
        "ts": time.time() - age_s,
        "started": time.time() - 60,
        "connected": True,
        "broker": "mqtt://127.0.0.1:1883",
        "outbox_depth": 3,
        "last_seq": 1234,
        "dropped_total": 0,
        "published": 1231,
        "acked": 1231,
        "last_ack_ts": time.time() - 1,
        "buses": {"bus-1": {"open": True, "counters": {"transactions": 99, "timeouts": 2}}},
        "devices": {
            "smk-0001": {
                "bus": "bus-1",
                "quality": "good",
                "failures": 0,
                "last_error": "",
                "counters": {"good": 97},
                "values": {"temperature_c": 21.5},
            }
        },
    }
    (tmp_path / "var" / "status.json").write_text(json.dumps(status))


def test_status_without_a_status_file_says_not_running(tmp_path: Path) -> None:
    path = _status_site(tmp_path)
    result = cli("status", "--config", path)
    assert result.exit_code == 3
    assert "gateway not running" in result.output
    result = cli("status", "--config", path, "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["running"] is False


def test_status_with_a_stale_file_says_not_running(tmp_path: Path) -> None:
    path = _status_site(tmp_path)
    _write_status(tmp_path, age_s=30)
    result = cli("status", "--config", path)
    assert result.exit_code == 3
    assert "gateway not running" in result.output
    assert "30 s ago" in result.output
    result = cli("status", "--config", path, "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["running"] is False


def test_status_of_a_running_gateway(tmp_path: Path) -> None:
    path = _status_site(tmp_path)
    _write_status(tmp_path, age_s=0.5)
    result = cli("status", "--config", path)
    assert result.exit_code == 0, result.output
    for words in ("connected", "3 queued, last seq 1234", "1231 acked", "smk-0001", "good", "99"):
        assert words in result.output
    report = json.loads(cli("status", "--config", path, "--json").stdout)
    assert report["running"] is True
    assert report["status"]["last_seq"] == 1234


# -- scan, probe, watch against the simulator ---------------------------------------------


def test_scan_rtu_finds_exactly_the_simulated_units(field: SimThread) -> None:
    result = cli(
        "scan",
        "--port",
        field.address("line-a"),
        "--baud",
        "19200",
        "--units",
        "1-10",
        "--timeout",
        "0.1",
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["scanned"] == 10
    assert [(f["unit"], f["profile"]) for f in report["found"]] == [(3, "smoke"), (7, "manhole")]
    assert report["found"][0]["firmware_version"] == "v1.2"


def test_scan_tcp_finds_exactly_the_simulated_units(field: SimThread) -> None:
    host, port = field.address("gw-a").rsplit(":", 1)
    result = cli("scan", "--protocol", "tcp", "--host", host, "--port", port, "--units", "1-8")
    assert result.exit_code == 0, result.output
    assert "2 of 8 unit ids answered" in result.output
    result = cli(
        "scan", "--protocol", "tcp", "--host", host, "--port", port, "--units", "1-8", "--json"
    )
    found = json.loads(result.stdout)["found"]
    assert [(f["unit"], f["profile"]) for f in found] == [(1, "flood"), (5, "ebike")]


def test_scan_with_nothing_answering_exits_1(field: SimThread) -> None:
    result = cli("scan", "--port", field.address("line-a"), "--baud", "19200", "--units", "100-102")
    assert result.exit_code == 1
    assert "no unit answered" in result.output


def test_scan_usage_errors_exit_2() -> None:
    assert cli("scan", "--protocol", "tcp").exit_code == 2  # no --host
    assert cli("scan", "--port", "/dev/x", "--units", "0-300").exit_code == 2


def test_scan_of_a_missing_port_exits_1(tmp_path: Path) -> None:
    result = cli("scan", "--port", tmp_path / "ttyUSB9", "--units", "1")
    assert result.exit_code == 1
    assert "ttyUSB9" in result.output


def test_probe_by_port_unit_and_profile(field: SimThread) -> None:
    truth = field.call(lambda: field.sims.device("smk-a").truth())  # type: ignore[union-attr]
    result = cli(
        "probe",
        "--port",
        field.address("line-a"),
        "--baud",
        "19200",
        "--unit",
        "3",
        "--profile",
        "smoke",
        "--json",
    )
    assert result.exit_code == 0, result.output
    values = json.loads(result.stdout)["values"]
    assert values["temperature_c"] == {"value": pytest.approx(truth["temperature_c"]), "unit": "°C"}
    assert values["battery_mv"]["value"] == truth["battery_mv"]
    table = cli(
        "probe",
        "--port",
        field.address("line-a"),
        "--baud",
        "19200",
        "--unit",
        "3",
        "--profile",
        "smoke",
    )
    assert "temperature_c" in table.output
    assert "°C" in table.output


def test_probe_a_configured_device(field: SimThread, tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(site_yaml(field))
    truth = field.call(lambda: field.sims.device("fl-a").truth())  # type: ignore[union-attr]
    result = cli("probe", "--config", path, "fl-a", "--json")
    assert result.exit_code == 0, result.output
    reading = json.loads(result.stdout)
    assert reading["device"] == "fl-a"
    assert reading["values"]["level_mm"]["value"] == pytest.approx(truth["level_mm"], abs=0.01)


def test_probe_errors(field: SimThread, tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(site_yaml(field))
    assert cli("probe", "--config", path, "nope").exit_code == 2
    assert cli("probe", "--port", field.address("line-a"), "--unit", "3").exit_code == 2
    assert (
        cli("probe", "--port", field.address("line-a"), "--unit", "3", "--profile", "x").exit_code
        == 2
    )
    silent = cli(
        "probe",
        "--port",
        field.address("line-a"),
        "--baud",
        "19200",
        "--unit",
        "9",
        "--profile",
        "smoke",
        "--timeout",
        "0.1",
    )
    assert silent.exit_code == 1
    assert "unit 9" in silent.output


def test_watch_polls_the_device_directly(field: SimThread, tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(site_yaml(field))
    result = cli("watch", "--config", path, "mh-a", "--interval", "0.05", "--count", "3", "--json")
    assert result.exit_code == 0, result.output
    readings = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(readings) == 3
    assert {r["source"] for r in readings} == {"bus"}
    assert all("tilt_deg" in r["values"] for r in readings)
    table = cli("watch", "--config", path, "mh-a", "--interval", "0.05", "--count", "2")
    assert table.exit_code == 0, table.output
    assert "tilt_deg" in table.output


def test_watch_reads_the_running_gateway_status(tmp_path: Path) -> None:
    path = _status_site(tmp_path)
    _write_status(tmp_path, age_s=0)
    result = cli("watch", "--config", path, "smk-0001", "--count", "1", "--json")
    assert result.exit_code == 0, result.output
    reading = json.loads(result.stdout)
    assert reading["source"] == "gateway"
    assert reading["values"]["temperature_c"] == {"value": 21.5, "unit": "°C"}


# -- run and commission: real processes ---------------------------------------------------


class CliProcess:
    """`python -m edge.cli ...` as a child; its output lines collected by a reader thread."""

    def __init__(self, *args: str | Path, cwd: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", *map(str, args)],
            cwd=cwd,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.lines.append(line)
                self._new.put(line)
        self._new.put(None)

    def wait_for(self, words: str, timeout_s: float) -> str:
        """The first output line containing *words*; fail after *timeout_s*."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._new.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if words in line:
                return line
        pytest.fail(f"no line with {words!r} in {timeout_s} s; output:\n{self.output}")

    def wait(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"process still running after {timeout_s} s; output:\n{self.output}")

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)


@pytest.fixture
def procs() -> Iterator[list[CliProcess]]:
    started: list[CliProcess] = []
    yield started
    for p in started:
        p.kill()


def test_run_refuses_a_broken_config_and_starts_nothing(
    tmp_path: Path, procs: list[CliProcess]
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(BROKEN % {"unit": 1, "profile": "smokey", "bus": "bus-1"})
    gw = CliProcess("run", "--config", path, cwd=tmp_path)
    procs.append(gw)
    assert gw.wait(30) == 2
    assert f"{path}:8: devices[0].profile: unknown profile 'smokey'" in gw.output
    assert [p.name for p in tmp_path.iterdir()] == ["gateway.yaml"]  # no outbox, no var/


def test_run_refuses_what_validate_refuses(tmp_path: Path, procs: list[CliProcess]) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(MQTT_URL % {"url": "http://broker.example:1883"})
    validated = cli("validate", "--config", path)
    gw = CliProcess("run", "--config", path, cwd=tmp_path)
    procs.append(gw)
    assert gw.wait(30) == 2
    assert validated.exit_code == 2
    issue = f"{path}:3: mqtt.url: Value error, broker URL 'http://broker.example:1883'"
    assert issue in validated.output
    assert issue in gw.output
    assert [p.name for p in tmp_path.iterdir()] == ["gateway.yaml"]


def _status(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


def _start_gateway(
    sim: SimThread, broker: Mosquitto, tmp_path: Path, procs: list[CliProcess]
) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(site_yaml(sim, broker.url))
    gw = CliProcess("run", "--config", path, "--json-logs", cwd=tmp_path)
    procs.append(gw)
    status = tmp_path / "var" / "status.json"
    wait_until(
        lambda: _status(status).get("devices", {}).get("smk-a", {}).get("quality") == "good",
        20,
        "the gateway to connect and read smk-a",
    )
    return path


def test_run_stops_cleanly_on_sigterm(
    field: SimThread, broker: Mosquitto, tmp_path: Path, procs: list[CliProcess]
) -> None:
    path = _start_gateway(field, broker, tmp_path, procs)
    assert cli("status", "--config", path).exit_code == 0
    gw = procs[0]
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.wait(20) == 0, gw.output
    logs = [json.loads(line) for line in gw.lines if line.startswith("{")]
    assert any("stopped" in entry["message"] for entry in logs), gw.output
    assert not _status(tmp_path / "var" / "status.json")["connected"]


def test_commission_sees_the_test_button_through_a_real_gateway(
    field: SimThread, broker: Mosquitto, tmp_path: Path, procs: list[CliProcess]
) -> None:
    path = _start_gateway(field, broker, tmp_path, procs)
    tool = CliProcess("commission", "--config", path, "smk-a", "--timeout", "30", cwd=tmp_path)
    procs.append(tool)
    tool.wait_for("Press the test button on smk-a now", 15)
    field.call(lambda: field.sims.device("smk-a").trigger("test"))  # type: ignore[union-attr]
    assert tool.wait(30) == 0, tool.output
    assert "✓ test event from smk-a reached the broker (seq " in tool.output


def _publish(broker: Mosquitto, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
    client.connect("127.0.0.1", broker.port, 30)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_commission_with_an_event_published_by_hand(
    broker: Mosquitto, tmp_path: Path, procs: list[CliProcess]
) -> None:
    path = tmp_path / "gateway.yaml"
    cli("init", "--out", path)
    tool = CliProcess(
        "commission",
        "--config",
        path,
        "smk-0001",
        "--broker",
        broker.url,
        "--timeout",
        "30",
        cwd=tmp_path,
    )
    procs.append(tool)
    tool.wait_for("Press the test button on smk-0001 now", 15)
    topic = event_topic("gw-0001", "smk-0001")
    ts = time.time()
    other = EventMessage(gw="gw-0001", dev="smk-0001", seq=6, ts=ts, event="tamper", active=True)
    _publish(broker, topic, encode(other))
    press = EventMessage(
        gw="gw-0001", dev="smk-0001", seq=7, ts=ts, event="test_button", active=True
    )
    _publish(broker, topic, encode(press))
    assert tool.wait(30) == 0, tool.output
    assert "✓ test event from smk-0001 reached the broker (seq 7, after " in tool.output


def test_commission_times_out_with_hints(broker: Mosquitto, tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    cli("init", "--out", path)
    result = cli(
        "commission", "--config", path, "smk-0001", "--broker", broker.url, "--timeout", "1"
    )
    assert result.exit_code == 1
    assert "no test_button event from smk-0001" in result.output
    assert "gridalarm edge status" in result.output


def test_commission_without_a_broker_exits_3(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    cli("init", "--out", path)
    url = f"mqtt://127.0.0.1:{free_port()}"
    result = cli("commission", "--config", path, "smk-0001", "--broker", url, "--timeout", "1")
    assert result.exit_code == 3
    assert "cannot connect to the broker" in result.output


def test_commission_needs_a_device_with_a_test_button(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    cli("init", "--out", path)
    assert cli("commission", "--config", path, "nope").exit_code == 2
    result = cli("commission", "--config", path, "flood-0001")
    assert result.exit_code == 2
    assert "no test_button event" in result.output
