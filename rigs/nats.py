"""A real 3-node NATS cluster with its MQTT listener and replicated JetStream, on loopback.

Debian's ``nats-server`` (2.9) speaks MQTT 3.1.1 and keeps MQTT sessions and QoS 1 messages
in JetStream; with ``stream_replicas: 3`` a session survives the death of the node its
client was on. Each node gets free ports (client, cluster route, MQTT, monitoring) and its
own store folder; ``kill(i)`` is a kill -9, ``start(i)`` brings the node back with its store.
The configuration is written from ``deploy/nats/node.conf.template``, so what the tests run
is what deploy/ ships.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from gridalarm.brokers import free_port, wait_for_port

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "nats" / "node.conf.template"


@dataclass(frozen=True)
class Node:
    name: str
    client: int
    route: int
    mqtt: int
    monitor: int


class NatsCluster:
    """``with NatsCluster(tmp) as c:`` three nodes up, JetStream ready; ``c.mqtt_ports``."""

    def __init__(self, folder: Path | None = None, size: int = 3) -> None:
        exe = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(exe).exists():
            raise FileNotFoundError("nats-server is not installed (apt-get install nats-server)")
        self.exe = exe
        self.folder = folder or Path(tempfile.mkdtemp(prefix="ga-nats-"))
        self.nodes = [
            Node(f"n{i}", free_port(), free_port(), free_port(), free_port()) for i in range(size)
        ]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size

    @property
    def mqtt_ports(self) -> list[int]:
        return [n.mqtt for n in self.nodes]

    def config(self, i: int) -> Path:
        node = self.nodes[i]
        routes = ", ".join(f"nats-route://127.0.0.1:{n.route}" for n in self.nodes if n is not node)
        text = TEMPLATE.read_text(encoding="utf-8")
        for key, value in {
            "NAME": node.name, "CLIENT_PORT": node.client, "ROUTE_PORT": node.route,
            "MQTT_PORT": node.mqtt, "MONITOR_PORT": node.monitor, "ROUTES": routes,
            "STORE_DIR": self.folder / node.name, "REPLICAS": min(3, len(self.nodes)),
        }.items():  # fmt: skip
            text = text.replace("{{" + key + "}}", str(value))
        path = self.folder / f"{node.name}.conf"
        path.write_text(text, encoding="utf-8")
        return path

    def start(self, i: int) -> None:
        log = (self.folder / f"{self.nodes[i].name}.log").open("ab")
        self.procs[i] = subprocess.Popen(
            [self.exe, "-c", str(self.config(i))], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        wait_for_port(self.nodes[i].mqtt, timeout_s=30)

    def kill(self, i: int) -> None:
        """kill -9 node *i* (its store stays for a restart)."""
        proc = self.procs[i]
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            self.procs[i] = None

    def jetstream_ready(self, i: int) -> bool:
        """Node *i* sees a JetStream meta leader (MQTT sessions can be stored)."""
        url = f"http://127.0.0.1:{self.nodes[i].monitor}/jsz"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                body = r.read().decode()
        except OSError:
            return False
        return '"meta_cluster"' in body and '"leader"' in body

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        live = [i for i, p in enumerate(self.procs) if p is not None]
        while not all(self.jetstream_ready(i) for i in live):
            if time.monotonic() > deadline:
                raise TimeoutError(f"NATS JetStream not ready in {timeout_s} s ({self.folder})")
            time.sleep(0.2)

    def __enter__(self) -> Self:
        try:
            for i in range(len(self.nodes)):
                self.start(i)
            self.wait_ready()
        except BaseException:
            self.__exit__(None, None, None)  # no node outlives a start that failed
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.kill(i)
