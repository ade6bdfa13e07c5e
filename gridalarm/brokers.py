"""Which MQTT broker a demo or a test uses, and starting a local one.

Order of choice: a broker given by URL (only connected to, never started or stopped); else a
``mosquitto`` binary on PATH (or in /usr/sbin), started on a free loopback port with a
config that keeps QoS1 queues large and persistent; else the embedded pure-Python amqtt
broker (MQTT 3.1.1 only), so a newcomer needs nothing installed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MOSQUITTO_CONF = """\
# Written by gridalarm for a local broker; see deploy/mosquitto/ for production configs.
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {data}/
autosave_interval 1
# Mosquitto drops QoS1 messages beyond 1000 queued for an offline client by default.
max_queued_messages 1000000
# The cloud acknowledges after each checkpoint: the window holds a checkpoint's worth.
max_inflight_messages 20000
log_dest file {data}/mosquitto.log
log_type error
log_type warning
log_type notice
{user}"""


class BrokerError(RuntimeError):
    """A broker could not be started or reached."""


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    url: str
    kind: str  # "external", "mosquitto", "amqtt"
    protocols: tuple[str, ...]  # MQTT versions it speaks

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def wait_for_port(port: int, timeout_s: float = 10.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts TCP connections on *port*."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as err:
            if time.monotonic() > deadline:
                raise BrokerError(f"nothing listens on {host}:{port} after {timeout_s} s") from err
            time.sleep(0.05)


class Mosquitto:
    """A mosquitto process on a loopback port; stop() and start() again keep its data dir."""

    def __init__(self, binary: str, data_dir: Path, port: int | None = None) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = data_dir / "mosquitto.conf"
        data_dir.mkdir(parents=True, exist_ok=True)
        # Started as root, mosquitto drops to the `mosquitto` user and then cannot write its
        # persistence file here, silently: every session would be lost on restart.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            MOSQUITTO_CONF.format(port=self.port, data=data_dir, user=user), encoding="utf-8"
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port(self.port)
        except BrokerError:
            self.stop()
            log = self.data_dir / "mosquitto.log"
            raise BrokerError(
                f"mosquitto did not start: {log.read_text() if log.exists() else ''}"
            ) from None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def mosquitto(data_dir: Path | None = None) -> Iterator[Mosquitto]:
    binary = find_mosquitto()
    if binary is None:
        raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ga-mosq-")))
        broker = Mosquitto(binary, data_dir)
        broker.start()
        stack.callback(broker.stop)
        yield broker


@contextlib.asynccontextmanager
async def embedded_amqtt() -> AsyncIterator[BrokerInfo]:
    """Run amqtt in this process on a free loopback port (MQTT 3.1.1 only)."""
    from amqtt.broker import Broker  # noqa: PLC0415 - heavy, and only the fallback needs it

    port = free_port()
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    try:
        yield BrokerInfo(f"mqtt://127.0.0.1:{port}", "amqtt", ("3.1.1",))
    finally:
        await broker.shutdown()


@contextlib.asynccontextmanager
async def choose_broker(url: str | None, *, embedded: bool = False) -> AsyncIterator[BrokerInfo]:
    """The broker for a demo: the given URL, else a local mosquitto, else embedded amqtt."""
    if url:
        yield BrokerInfo(url, "external", ("3.1.1", "5"))
        return
    if find_mosquitto() and not embedded:
        with mosquitto() as m:
            yield BrokerInfo(m.url, "mosquitto", ("3.1.1", "5"))
        return
    logger.info("no mosquitto on PATH; starting the embedded amqtt broker (MQTT 3.1.1)")
    async with embedded_amqtt() as info:
        yield info
