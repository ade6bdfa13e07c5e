"""`gridalarm demo` as a user runs it: a real process, `gridalarm sim list / trigger` beside it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from cloud.console.users import authenticate
from cloud.lifecycle.board import BoardRow, list_board
from cloud.registry.people_csv import read_shifts_csv, read_workers_csv
from cloud.registry.shifts import shift_covers
from gridalarm.brokers import Mosquitto, free_port
from gridalarm.morning import EXPECTED_RAISED, EXPECTED_REPORTS, FALSE_ALARM_DEVICES
from rigs.standins.twilio_api import TwilioStandin
from rules.devices_csv import read_devices_csv
from tests.support import Recorder, wait_until

pytestmark = pytest.mark.integration


def start_demo(
    tmp_path: Path, broker_url: str, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Path]:
    """`gridalarm demo --broker URL --plain --no-scenario` in the background; (process, log)."""
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gridalarm",
                "demo",
                "--http",
                f"127.0.0.1:{free_port()}",
                "--broker",
                broker_url,
                "--plain",
                "--no-scenario",  # these tests trigger the devices themselves
                "--state-dir",
                str(tmp_path / "demo"),
            ],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return demo, log


def sim_cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`gridalarm sim ARGS` beside a running demo (same folder, same state dir)."""
    return subprocess.run(
        [sys.executable, "-m", "gridalarm", "sim", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )


def test_demo_with_given_broker_then_sim_trigger(broker: Mosquitto, tmp_path: Path) -> None:
    recorder = Recorder(broker.port, "ga/v1/#", client_id="demo-watcher")
    env = {**os.environ, "GRIDALARM_STATE_DIR": str(tmp_path / "state")}
    demo, log = start_demo(tmp_path, broker.url, env)
    try:
        wait_until((tmp_path / "state" / "sim.json").exists, 30, "the simulators' state file")
        listed = sim_cli(tmp_path, env, "list", "--json")
        devices = json.loads(listed.stdout)
        smoke = next(d["id"] for d in devices if d["type"] == "smoke")
        wait_until(
            lambda: any(t.endswith(f"/dev/{smoke}/data") for t, _, _ in recorder.snapshot()),
            30,
            "the gateway to publish the smoke detector's data",
        )
        sim_cli(tmp_path, env, "trigger", smoke, "smoke")

        def alarm() -> bool:
            for topic, payload, _ in recorder.snapshot():
                if topic.endswith(f"/dev/{smoke}/event"):
                    m = json.loads(payload)
                    if m["event"] == "smoke_alarm" and m["active"] is True:
                        return True
            return False

        wait_until(alarm, 15, "the smoke alarm event on the broker")
        wait_until(lambda: "smoke_alarm ON" in log.read_text(), 10, "the demo to show the alarm")
        wait_until(lambda: "ALARM RAISE" in log.read_text(), 15, "the cloud to raise the alarm")
        wait_until(
            lambda: "NOTIFY" in log.read_text() and "/m/" in log.read_text(),
            15,
            "a grid worker notified with a link (console channel)",
        )
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(30)
        recorder.close()
    assert code == 0, log.read_text()[-3000:]
    assert broker.proc is not None and broker.proc.poll() is None, (
        "the demo must not stop a broker it was given"
    )
    assert not (tmp_path / "state" / "sim.json").exists(), "the state file is removed on exit"


def run_demo_for(tmp_path: Path, seconds: int, *extra: str) -> subprocess.CompletedProcess[str]:
    """`gridalarm demo --plain --duration S` in *tmp_path*; return what it printed."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gridalarm",
            "demo",
            "--http",
            f"127.0.0.1:{free_port()}",
            "--plain",
            "--duration",
            str(seconds),
            "--state-dir",
            str(tmp_path / "demo"),
            *extra,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "GRIDALARM_STATE_DIR": str(tmp_path / "state")},
    )


def test_demo_starts_its_own_mosquitto(tmp_path: Path, broker: Mosquitto) -> None:
    # `broker` only proves mosquitto is installed (and fails under CI when it is not)
    result = run_demo_for(tmp_path, 6)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "(mosquitto)" in result.stdout
    assert "gw-demo online" in result.stdout
    assert " seq 1 " in result.stdout


def test_demo_with_embedded_broker(tmp_path: Path) -> None:
    """What a newcomer without mosquitto gets: amqtt, and a gateway speaking MQTT 3.1.1 to it."""
    result = run_demo_for(tmp_path, 8, "--embedded-broker")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "(amqtt)" in result.stdout
    assert "gw-demo online" in result.stdout
    assert " seq 1 " in result.stdout
    assert "protocol: 3.1.1" in (tmp_path / "demo" / "gateway.yaml").read_text()


def test_demo_sends_the_sms_to_the_grids_on_duty_worker_through_twilio(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """The issue's first acceptance: demo + TWILIO_* pointing at a local stand-in, then
    `gridalarm sim trigger <a smoke detector> smoke`: within 2 s the stand-in gets the
    Messages POST, the body names the device, To is an on-duty worker of that grid."""
    with TwilioStandin() as twilio:
        env = {
            **os.environ,
            "GRIDALARM_STATE_DIR": str(tmp_path / "state"),
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_FROM_NUMBER": "+15005550006",
            "GRIDALARM_TWILIO_API_URL": twilio.url,
        }
        for var in ("TWILIO_REGION", "TWILIO_EDGE"):
            env.pop(var, None)
        demo, log = start_demo(tmp_path, broker.url, env)
        try:
            wait_until(
                lambda: "dispatch to grid workers by SMS" in log.read_text(), 60, "the cloud"
            )
            listed = sim_cli(tmp_path, env, "list", "--json")
            smoke = next(d["id"] for d in json.loads(listed.stdout) if d["type"] == "smoke")
            wait_until(lambda: f"data  {smoke}" in log.read_text(), 30, "the detector's first data")
            sim_cli(tmp_path, env, "trigger", smoke, "smoke")
            t0 = time.monotonic()
            wait_until(lambda: bool(twilio.messages), 10, "the Messages POST at the stand-in")
            took = time.monotonic() - t0
            wait_until(
                lambda: sum(smoke in m["body"] for m in twilio.messages) >= 2,
                10,
                "the two nearest workers' messages (a suspected fire goes to both)",
            )
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(30)
    assert took < 2.0, f"trigger to SMS request took {took:.2f} s"
    # a suspected fire goes to the two nearest at once, in either order: the grid's worker first
    # in rank, but not necessarily the first request at the stand-in
    sent = [m for m in twilio.messages if smoke in m["body"]]
    assert sent, twilio.messages
    district = tmp_path / "demo" / "district"
    grid = next(
        d.grid
        for d in read_devices_csv((district / "devices.csv").read_text(), "d")
        if d.device == smoke
    )
    workers = {
        w.phone: w for _line, w in read_workers_csv((district / "workers.csv").read_text(), "w")
    }
    shifts = read_shifts_csv((district / "shifts.csv").read_text(), "s")
    now = time.time()
    on_duty = {
        w.id
        for w in workers.values()
        if w.role == "worker"
        and any(sh.worker == w.id and shift_covers(sh, now) for _line, sh in shifts)
    }
    of_grid = {w for w in on_duty if grid in next(x for x in workers.values() if x.id == w).grids}
    # a grid with nobody on shift now (night shifts cover a community) goes to the nearest on duty
    expected = of_grid or on_duty
    to = sorted(workers[m["to"]].id for m in sent)
    assert set(to) & expected, (to, grid, sorted(expected))


def test_a_busy_web_port_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        result = run_demo_for(tmp_path, 5, "--http", f"127.0.0.1:{port}")
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        f"gridalarm demo: 127.0.0.1:{port} is in use (Address already in use); "
        "pass --http HOST:PORT"
    ]
    assert "broker:" not in result.stdout, "nothing may start before the port is known free"
    assert not (tmp_path / "demo").exists()


REPO = Path(__file__).resolve().parents[2]
SPEED = "60"


def board(state: Path) -> list[BoardRow]:
    """The demo cloud's alarm board, read from its database as `gridalarm cloud alarms` does."""
    db_file = state / "cloud.sqlite"
    if not db_file.exists():
        return []
    engine = sa.create_engine(f"sqlite:///{db_file}")
    try:
        return list_board(engine, limit=1000)
    except sa.exc.OperationalError:  # the cloud is still creating its tables
        return []
    finally:
        engine.dispose()


def morning_done(state: Path) -> bool:
    rows = board(state)
    raised = {(r.device, r.rule_id) for r in rows}
    reports = {r.rule_id for r in rows if r.category == "report"}
    paged = [r for r in rows if r.notify != "board"]
    expected = set(EXPECTED_RAISED) <= raised and set(EXPECTED_REPORTS) <= reports
    return expected and all(r.state in ("resolved", "cleared") for r in paged)


def test_the_readme_command_runs_the_scripted_morning_to_a_clean_board(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """`bash scripts/demo.sh` (the README's first command) with an empty home, piped: the
    console and phones URLs come first, the fleet brings every gateway of the district online,
    the morning plays at high speed, the simulated workers close every alarm (and the hazard
    one of them reports) through the worker's page, and the KPIs are what the script expects."""
    home, state = tmp_path / "home", tmp_path / "demo"
    home.mkdir()
    status = Recorder(broker.port, "ga/v1/+/status", client_id="morning-status")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "COLUMNS": "40",  # piped output must not care
        "GRIDALARM_STATE_DIR": str(tmp_path / "state"),
    }
    port = free_port()
    args = ["--http", f"127.0.0.1:{port}", "--broker", broker.url, "--speed", SPEED]
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen(
            ["bash", str(REPO / "scripts" / "demo.sh"), *args, "--state-dir", str(state)],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        # (setup.sh installs first if pyproject.toml changed since the last install)
        wait_until(lambda: morning_done(state), 120, "the morning's alarms, all closed", 0.5)
        wait_until(lambda: "KPI raised" in log.read_text(), 15, "the KPI line", 0.2)
        phones = httpx.get(f"http://127.0.0.1:{port}/phones", timeout=10).text
        online = {t for t, p, _ in status.snapshot() if json.loads(p)["state"] == "online"}
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(30)
        status.close()
    text = log.read_text()
    assert code == 0, text[-3000:]
    lines = [line for line in text.splitlines() if not line.startswith("setup: ")]
    assert lines[0].startswith(f"console: http://127.0.0.1:{port}/console/  (sign in: demo / ")
    password = lines[0].rsplit(" / ", 1)[1].rstrip(")")
    engine = sa.create_engine(f"sqlite:///{state / 'cloud.sqlite'}")
    try:
        assert authenticate(engine, "demo", password) is not None, "the printed account signs in"
    finally:
        engine.dispose()
    assert lines[1].startswith(f"phones:  http://127.0.0.1:{port}/phones"), lines[:3]
    assert any("try: gridalarm sim list" in line for line in lines), "one line, however narrow"
    district = read_devices_csv((state / "district" / "devices.csv").read_text(), "d")
    gateways = {d.gateway for d in district}
    assert len(online) >= len(gateways), f"{len(online)} of {len(gateways)} gateways online"
    rows = board(state)
    paged = [r for r in rows if r.notify != "board"]
    assert len(paged) >= len(EXPECTED_RAISED)
    assert all(r.state in ("resolved", "cleared") for r in paged), "closed"
    false_alarms = [r for r in rows if r.outcome == "false_alarm"]
    assert {r.device for r in false_alarms} == set(FALSE_ALARM_DEVICES)
    assert all(r.outcome == "false_alarm" for r in rows if r.device in FALSE_ALARM_DEVICES)
    assert [r.rule_id for r in rows if r.category == "report"] == list(EXPECTED_REPORTS), "once"
    assert not [r.id for r in rows if r.overdue], "overdue"
    for r in rows:  # one line per sensor alarm, with its device and both titles
        if r.category == "report":
            continue  # not the rules' alarm: its line is the worker's report (below)
        assert f"{r.device or r.gateway}" in text and f"{r.title_zh} / {r.title_en}" in text
    assert "/m/" in phones and "smk-0001" in phones, "the phones page shows the messages"
    assert "SCRIPT a gateway loses its uplink" in text
    assert "reports a hazard: blocked_exit" in text, "a worker's hazard report, through the page"
    kpi = next(line for line in text.splitlines() if line.startswith("KPI raised"))
    raised, closed = re.findall(r"raised (\d+) · closed (\d+)", kpi)[0]
    assert raised == closed and int(raised) >= len(EXPECTED_RAISED), kpi
    assert f"· false alarms {len(false_alarms)} · overdue 0" in kpi


def test_each_run_starts_fresh_unless_asked_to_keep_state(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """A run continues the last one's sequences with --keep-state; without it, the demo's own
    files go (and nothing else in the folder)."""
    state = tmp_path / "demo"
    state.mkdir()
    (state / "notes.txt").write_text("mine", encoding="utf-8")
    (state / "fleet.json").write_text('{"gw-0001": 1000}', encoding="utf-8")
    quiet = ("--no-scenario", "--broker", broker.url)
    kept = run_demo_for(tmp_path, 8, "--keep-state", *quiet)
    assert kept.returncode == 0, kept.stdout[-3000:] + kept.stderr[-3000:]
    assert "state: continuing the last run" in kept.stdout
    continued = json.loads((state / "fleet.json").read_text())
    assert continued["gw-0001"] > 1000, "the fleet gateway's sequence continues"
    assert all(seq > 0 for seq in continued.values()), "every fleet gateway reported"
    fresh = run_demo_for(tmp_path, 8, *quiet)
    assert fresh.returncode == 0, fresh.stdout[-3000:] + fresh.stderr[-3000:]
    assert "state: fresh start" in fresh.stdout and "files of the last run removed" in fresh.stdout
    again = json.loads((state / "fleet.json").read_text())
    assert 0 < again["gw-0001"] < 1000, "a fresh run numbers from 1"
    assert (state / "notes.txt").read_text(encoding="utf-8") == "mine"


def demo_in_terminal(tmp_path: Path, broker: Mosquitto, rows: int, cols: int) -> str:
    """`gridalarm demo` in a pseudo-terminal of *rows* x *cols*; what the terminal showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "CI")}
    args = ["--http", f"127.0.0.1:{free_port()}", "--broker", broker.url, "--no-scenario"]
    demo = subprocess.Popen(
        [sys.executable, "-m", "gridalarm", "demo", *args, "--duration", "5",
         "--state-dir", str(tmp_path / f"demo-{rows}")],
        cwd=tmp_path, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
        env={**env, "TERM": "xterm-256color", "GRIDALARM_STATE_DIR": str(tmp_path / "state")},
    )  # fmt: skip
    os.close(slave)
    shown = bytearray()
    with contextlib.suppress(OSError):  # EIO once the process has closed the terminal
        while chunk := os.read(master, 65536):
            shown += chunk
    os.close(master)
    assert demo.wait(30) == 0, shown.decode(errors="replace")[-3000:]
    return shown.decode(errors="replace")


def test_the_live_table_only_where_it_fits(broker: Mosquitto, tmp_path: Path) -> None:
    small = demo_in_terminal(tmp_path, broker, 20, 120)
    assert "console: http://" in small and "phones:  http://" in small
    assert "gw-demo online" in small, "one line per message"
    assert "┏" not in small, "no table in a terminal too small for it"
    large = demo_in_terminal(tmp_path, broker, 50, 120)
    assert "console: http://" in large
    assert "┏" in large and "events · gateways" in large, "the live table"
