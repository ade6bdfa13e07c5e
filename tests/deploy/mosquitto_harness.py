"""Test helpers: run a real Mosquitto from one of deploy/mosquitto's configs, and MQTT clients.

A config is copied with only what a test must change: the listener's port (bound to loopback)
and file paths (persistence, certificates, ACL). Every substituted directive must exist in the
shipped file, so a test cannot pass against a config that lost a line.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.deploy.pki import PkiPaths

REPO = Path(__file__).resolve().parents[2]
MOSQUITTO_CONFIGS = REPO / "deploy" / "mosquitto"
DEADLINE = 30.0  # seconds any single condition may take before the test fails


def mosquitto_binary() -> str:
    """The mosquitto binary; skip without one, but FAIL when CI=true (CI must run these)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    message = "mosquitto binary not found (Debian package 'mosquitto')"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; CI=true, so this is a failure, not a skip")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def render_config(
    source: Path,
    target: Path,
    *,
    port: int,
    set_: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> Path:
    """Copy *source* to *target*, pointing its one listener at 127.0.0.1:*port*.

    *set_* replaces the value of directives that must already be in the file; *drop* removes
    directives that must be there. When run as root, Mosquitto would switch to the
    ``mosquitto`` user and lose access to the test's files, so ``user root`` is set.
    """
    lines = source.read_text(encoding="utf-8").splitlines()
    wanted = {"listener": f"{port} 127.0.0.1", **(set_ or {})}
    as_root = os.geteuid() == 0
    if as_root:
        wanted["user"] = "root"
    seen: set[str] = set()
    out: list[str] = []
    for line in lines:
        m = re.match(r"^([a-z_]+)\s", line)
        key = m.group(1) if m else None
        if key in drop:
            seen.add(key)
            continue
        if key in wanted:
            if key in seen:
                raise AssertionError(f"{source.name}: {key} appears more than once")
            seen.add(key)
            out.append(f"{key} {wanted[key]}")
            continue
        out.append(line)
    missing = (set(wanted) | set(drop)) - seen - {"user"}
    assert not missing, f"{source.name} lacks directives the test substitutes: {sorted(missing)}"
    if as_root and "user" not in seen:
        out.append("user root")
    target.write_text("\n".join(out) + "\n", encoding="utf-8")
    return target


@dataclass
class Broker:
    """One Mosquitto process; :meth:`stop` shuts it down cleanly (SIGTERM saves persistence)."""

    config: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Broker:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [mosquitto_binary(), "-c", str(self.config)], stdout=log, stderr=log
            )
        pause = threading.Event()
        deadline = time.monotonic() + DEADLINE
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited {self.proc.returncode}:\n{self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() >= deadline:
                    raise AssertionError(f"mosquitto not listening:\n{self.logs()}") from None
                pause.wait(0.05)  # poll interval while waiting for the port, bounded above

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path | None = None
    key: Path | None = None


@dataclass
class Client:
    """A paho 2.x client with thread-safe records of what happened to it."""

    client_id: str
    clean: bool = True
    tls: Tls | None = None
    protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv311
    username: str | None = None
    received: list[mqtt.MQTTMessage] = field(default_factory=list)
    acks: dict[int, ReasonCode] = field(default_factory=dict)
    connack: ReasonCode | None = None
    session_present: bool | None = None

    def __post_init__(self) -> None:
        kwargs: dict[str, object] = {"client_id": self.client_id, "protocol": self.protocol}
        if self.protocol != mqtt.MQTTv5:
            kwargs["clean_session"] = self.clean
        self.paho = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)
        self.paho.max_queued_messages_set(0)
        self._cond = threading.Condition()
        self._connected = False
        self._disconnects = 0
        self._subacks: set[int] = set()
        self.paho.on_connect = self._on_connect
        self.paho.on_disconnect = self._on_disconnect
        self.paho.on_message = self._on_message
        self.paho.on_publish = self._on_publish
        self.paho.on_subscribe = self._on_subscribe
        if self.tls is not None:
            self.paho.tls_set(
                ca_certs=str(self.tls.ca),
                certfile=str(self.tls.cert) if self.tls.cert else None,
                keyfile=str(self.tls.key) if self.tls.key else None,
            )
        if self.username is not None:
            self.paho.username_pw_set(self.username)

    # --- callbacks (paho's network thread) -------------------------------------------
    def _on_connect(self, _c, _u, flags, reason_code, _p) -> None:
        with self._cond:
            self.connack = reason_code
            self.session_present = bool(flags.session_present)
            self._connected = not reason_code.is_failure
            self._cond.notify_all()

    def _on_disconnect(self, _c, _u, _f, _rc, _p) -> None:
        with self._cond:
            self._connected = False
            self._disconnects += 1
            self._cond.notify_all()

    def _on_message(self, _c, _u, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.received.append(message)
            self._cond.notify_all()

    def _on_publish(self, _c, _u, mid: int, reason_code: ReasonCode, _p) -> None:
        with self._cond:
            self.acks[mid] = reason_code
            self._cond.notify_all()

    def _on_subscribe(self, _c, _u, mid: int, _codes, _p) -> None:
        with self._cond:
            self._subacks.add(mid)
            self._cond.notify_all()

    # --- actions ------------------------------------------------------------------------
    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(
                    f"{self.client_id}: timed out after {timeout}s waiting for {what}"
                )

    def connect(self, port: int) -> Client:
        self.paho.connect("127.0.0.1", port, keepalive=30)
        self.paho.loop_start()
        self.wait(lambda: self.connack is not None, "CONNACK")
        assert self._connected, f"{self.client_id}: connection refused: {self.connack}"
        return self

    def try_connect(self, port: int) -> bool:
        """Attempt one connection; True only if the broker accepted it with a CONNACK."""
        try:
            self.paho.connect("127.0.0.1", port, keepalive=30)
        except (ssl.SSLError, OSError):
            return False
        self.paho.loop_start()
        self.wait(lambda: self.connack is not None or self._disconnects > 0, "CONNACK or refusal")
        return self._connected

    def subscribe(self, topic: str, qos: int = 1) -> None:
        result, mid = self.paho.subscribe(topic, qos)
        assert result == mqtt.MQTT_ERR_SUCCESS, result
        self.wait(lambda: mid in self._subacks, f"SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        info = self.paho.publish(topic, payload, qos=qos, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, info.rc
        return info.mid

    def wait_acked(self, mids: list[int]) -> None:
        self.wait(lambda: all(m in self.acks for m in mids), f"PUBACK of {len(mids)} publishes")

    def wait_received(self, predicate: Callable[[list[mqtt.MQTTMessage]], bool], what: str) -> None:
        self.wait(lambda: predicate(self.received), what)

    @property
    def connected(self) -> bool:
        with self._cond:
            return self._connected

    @property
    def disconnects(self) -> int:
        """How many times the connection was lost or closed."""
        with self._cond:
            return self._disconnects

    def wait_disconnected(self, what: str) -> None:
        self.wait(lambda: self._disconnects > 0, what)

    def topics(self) -> list[str]:
        with self._cond:
            return [m.topic for m in self.received]

    def disconnect(self) -> None:
        if self._connected:
            self.paho.disconnect()
            self.wait(lambda: not self._connected, "disconnect")
        self.paho.loop_stop()

    def close(self) -> None:
        """Stop without waiting on anything (for cleanup paths)."""
        try:
            self.paho.disconnect()
        finally:
            self.paho.loop_stop()


def tls_client(
    pki: PkiPaths, identity: str, client_id: str | None = None, **kwargs: object
) -> Client:
    """A client with *identity*'s certificate, asking for *client_id* (default: the identity)."""
    pair = pki.clients[identity]
    return Client(client_id or identity, tls=Tls(pki.ca_cert, pair.cert, pair.key), **kwargs)


def render_dev(
    tmp_path: Path, port: int, set_: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> Path:
    """dev.conf pointed at a free port and a persistence folder under *tmp_path*."""
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    return render_config(
        MOSQUITTO_CONFIGS / "dev.conf",
        tmp_path / "dev.conf",
        port=port,
        set_={"persistence_location": f"{store}/", **(set_ or {})},
        drop=drop,
    )


def render_production(tmp_path: Path, pki: PkiPaths) -> tuple[Path, int]:
    """production.conf + the shipped acl, pointed at *pki* and a free port: (config, port)."""
    port = free_port()
    store = tmp_path / "store"
    store.mkdir()
    config = render_config(
        MOSQUITTO_CONFIGS / "production.conf",
        tmp_path / "production.conf",
        port=port,
        set_={
            "cafile": str(pki.ca_cert),
            "certfile": str(pki.server.cert),
            "keyfile": str(pki.server.key),
            "acl_file": str(MOSQUITTO_CONFIGS / "acl"),
            "persistence_location": f"{store}/",
        },
    )
    return config, port
