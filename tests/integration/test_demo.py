"""`gridalarm demo` as a user runs it: a real process, `gridalarm sim list / trigger` beside it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gridalarm.brokers import Mosquitto, free_port
from tests.support import Recorder, wait_until

pytestmark = pytest.mark.integration


def test_demo_with_given_broker_then_sim_trigger(broker: Mosquitto, tmp_path: Path) -> None:
    recorder = Recorder(broker.port, "ga/v1/#", client_id="demo-watcher")
    log = tmp_path / "demo.log"
    env = {**os.environ, "GRIDALARM_STATE_DIR": str(tmp_path / "state")}
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
                broker.url,
                "--plain",
                "--state-dir",
                str(tmp_path / "demo"),
            ],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_until((tmp_path / "state" / "sim.json").exists, 30, "the simulators' state file")
        listed = subprocess.run(
            [sys.executable, "-m", "gridalarm", "sim", "list", "--json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        devices = json.loads(listed.stdout)
        smoke = next(d["id"] for d in devices if d["type"] == "smoke")
        wait_until(
            lambda: any(t.endswith(f"/dev/{smoke}/data") for t, _, _ in recorder.snapshot()),
            30,
            "the gateway to publish the smoke detector's data",
        )
        subprocess.run(
            [sys.executable, "-m", "gridalarm", "sim", "trigger", smoke, "smoke"],
            cwd=tmp_path,
            env=env,
            check=True,
            timeout=30,
            capture_output=True,
        )

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


def test_demo_starts_its_own_mosquitto(tmp_path: Path, broker: Mosquitto) -> None:
    # `broker` only proves mosquitto is installed (and fails under CI when it is not)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridalarm",
            "demo",
            "--http",
            f"127.0.0.1:{free_port()}",
            "--plain",
            "--duration",
            "6",
            "--state-dir",
            str(tmp_path / "demo"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "GRIDALARM_STATE_DIR": str(tmp_path / "state")},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "(mosquitto)" in result.stdout
    assert "gw-demo online" in result.stdout
    assert " seq 1 " in result.stdout


def test_demo_with_embedded_broker(tmp_path: Path) -> None:
    """What a newcomer without mosquitto gets: amqtt, and a gateway speaking MQTT 3.1.1 to it."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridalarm",
            "demo",
            "--http",
            f"127.0.0.1:{free_port()}",
            "--plain",
            "--duration",
            "8",
            "--embedded-broker",
            "--state-dir",
            str(tmp_path / "demo"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "GRIDALARM_STATE_DIR": str(tmp_path / "state")},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "(amqtt)" in result.stdout
    assert "gw-demo online" in result.stdout
    assert " seq 1 " in result.stdout
    assert "protocol: 3.1.1" in (tmp_path / "demo" / "gateway.yaml").read_text()
