"""The worker as systemd runs it: a real process, sd_notify on a real Unix socket (READY,
WATCHDOG pings, STATUS naming what is not ready), /healthz and /readyz over HTTP, SIGTERM a
clean stop with exit 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from gridalarm.brokers import Mosquitto, free_port
from tests.support import wait_until


class NotifySocket:
    """What systemd listens on: a datagram socket; keeps every message it gets."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def pump(self) -> list[str]:
        try:
            while True:
                self.messages.append(self.sock.recv(4096).decode())
        except TimeoutError:
            return self.messages

    def has(self, field: str) -> bool:
        return any(field in m.split("\n") for m in self.pump())

    def count(self, field: str) -> int:
        return sum(field in m.split("\n") for m in self.pump())


def readyz(port: int) -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=3)
    except httpx.TransportError:
        return None


def test_ready_watchdog_status_and_a_clean_stop(tmp_path: Path, broker: Mosquitto) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    ops = free_port()
    config = {
        "mqtt": {"url": broker.url, "client_id": "service-test"},
        "database_url": "sqlite:///cloud.sqlite",
        "sink": {"kind": "none"},
        "metrics_listen": f"127.0.0.1:{ops}",
    }
    (tmp_path / "cloud.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridalarm", "cloud", "run", "--config", "cloud.yaml"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: notify.has("READY=1"), 30, "READY=1 from the worker")
        wait_until(lambda: notify.has("STATUS=ready"), 15, "STATUS=ready once ingest connects")
        pings = notify.count("WATCHDOG=1")
        wait_until(lambda: notify.count("WATCHDOG=1") >= pings + 2, 5, "watchdog pings")
        assert httpx.get(f"http://127.0.0.1:{ops}/healthz", timeout=3).status_code == 200
        answer = readyz(ops)
        assert answer is not None and answer.status_code == 200, answer and answer.text
        assert set(answer.json()["parts"]) >= {"ingest", "database", "lag"}

        # the broker goes away: still alive (pings go on), not ready, and STATUS says why
        broker.stop()
        wait_until(
            lambda: (r := readyz(ops)) is not None and r.status_code == 503, 20, "readyz 503"
        )
        answer = readyz(ops)
        assert answer is not None and "broker" in answer.json()["parts"]["ingest"]
        wait_until(
            lambda: any(
                line.startswith("STATUS=not ready: ingest:")
                for m in notify.pump()
                for line in m.split("\n")
            ),
            15,
            "STATUS naming the ingest fault",
        )
        pings = notify.count("WATCHDOG=1")
        wait_until(lambda: notify.count("WATCHDOG=1") > pings, 5, "pings while not ready")
        broker.start()
        wait_until(
            lambda: (r := readyz(ops)) is not None and r.status_code == 200, 30, "ready again"
        )

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert notify.has("STOPPING=1")
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate()[0]
        notify.sock.close()
    assert output.count("ingest: not ready") == 1, output[-3000:]
    assert output.count("ingest: ready again") == 1, output[-3000:]
