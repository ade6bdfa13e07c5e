"""A gateway rig: simulators in this process, a gateway as a separate process, a real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
import yaml

from firmware_sim import SimConfig, SimulatorSet
from gridalarm.brokers import BrokerInfo, Mosquitto
from gridalarm.demo import gateway_yaml

RIG_SIM = {
    "buses": [
        {"name": "rtu-1", "transport": "rtu", "baud": 9600},
        {"name": "tcp-1", "transport": "tcp"},
    ],
    "devices": [
        {"id": "smk-0001", "type": "smoke", "transport": "rtu", "bus": "rtu-1", "unit": 1},
        {"id": "smk-0002", "type": "smoke", "transport": "rtu", "bus": "rtu-1", "unit": 2},
        {"id": "fl-0001", "type": "flood", "transport": "rtu", "bus": "rtu-1", "unit": 3},
        {"id": "mh-0001", "type": "manhole", "transport": "tcp", "bus": "tcp-1", "unit": 1},
        {"id": "eb-0001", "type": "ebike", "transport": "tcp", "bus": "tcp-1", "unit": 2},
    ],
}


def rig_sim_config() -> SimConfig:
    return SimConfig.model_validate(RIG_SIM)


def write_gateway_config(
    sims: SimulatorSet,
    broker: Mosquitto,
    directory: Path,
    gateway_id: str = "gw-t",
    **overrides: Any,
) -> Path:
    text = gateway_yaml(sims, BrokerInfo(broker.url, "mosquitto", ("3.1.1", "5")), gateway_id)
    config = yaml.safe_load(text)
    for key, value in overrides.items():
        config[key] = value
    for dev in config["devices"]:
        dev["poll_interval_s"] = 0.2
        dev["heartbeat_s"] = 5
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


class GatewayProcess:
    """`python -m gridalarm edge run --config PATH` as a child process."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.status_path = config.parent / "status.json"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = config.parent / "gateway.log"

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gridalarm",
                    "edge",
                    "run",
                    "--config",
                    str(self.config),
                    "--log-level",
                    os.environ.get("GW_LOG", "INFO"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def status(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}
        return data

    def fresh_status(self, since: float) -> dict[str, Any]:
        st = self.status()
        return (
            st if st.get("ts", 0) > since and self.proc and st.get("pid") == self.proc.pid else {}
        )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        proc, self.proc = self.proc, None
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.terminate()
            try:
                return proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                return -9
        return proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def sequenced(messages: Iterable[tuple[str, bytes, bool]]) -> list[dict[str, Any]]:
    """The decoded data / event / dropped messages, in arrival order."""
    out = []
    for topic, payload, _retained in messages:
        if "/dev/" in topic or topic.endswith("/dropped"):
            out.append(msgspec.json.decode(payload))
    return out
