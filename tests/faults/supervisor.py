"""The cloud under a stand-in for systemd: restarted after every exit, killed when it hangs.

As ``deploy/systemd/gridalarm-cloud.service`` has it: ``Type=notify`` with ``WatchdogSec=30``
(no ``WATCHDOG=1`` for that long: SIGABRT, systemd's watchdog signal), ``Restart=always``,
``RestartSec=2``. The notify socket is in the abstract namespace: no temp path in its name.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

import pytest

from tests.integration.test_cloud_restart import CloudProcess

WATCHDOG_S = 30.0
RESTART_S = 2.0
CHECK_EVERY_S = 1.0  # how often the watchdog deadline is looked at


@dataclass(frozen=True)
class Exit:
    """One end of the worker: its exit code and why (its last log line, or the watchdog)."""

    code: int
    why: str


class NotifySocket:
    """Receives sd_notify datagrams; remembers when READY=1 and WATCHDOG=1 last came."""

    def __init__(self) -> None:
        self.address = f"@gridalarm-faults-{os.getpid()}-{secrets.token_hex(4)}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind("\0" + self.address[1:])
        self._sock.settimeout(0.5)  # how soon the reader notices close()
        self._closing = threading.Event()
        self.last_ping = 0.0
        self.readies = 0
        self._thread = threading.Thread(target=self._read, name="faults.sd_notify", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closing.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            fields = data.decode(errors="replace").splitlines()
            if "WATCHDOG=1" in fields:
                self.last_ping = time.monotonic()
            if "READY=1" in fields:
                self.readies += 1

    def close(self) -> None:
        self._closing.set()
        self._thread.join(5)
        self._sock.close()


class Supervisor:
    """Starts the cloud, restarts it RESTART_S after any exit, SIGABRTs it when it hangs."""

    def __init__(self, cloud: CloudProcess, monkeypatch: pytest.MonkeyPatch) -> None:
        self.cloud = cloud
        self.exits: list[Exit] = []
        self.notify = NotifySocket()
        monkeypatch.setenv("NOTIFY_SOCKET", self.notify.address)
        monkeypatch.setenv("WATCHDOG_USEC", str(int(WATCHDOG_S * 1e6)))
        self._started = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._launch()
        self._task = asyncio.create_task(self._run(), name="faults.supervisor")

    def _launch(self) -> None:
        self._started = time.monotonic()
        self.cloud.start()

    async def _run(self) -> None:
        while True:
            code, hung = await self._wait()
            last = self.cloud.log().strip().splitlines()
            self.exits.append(Exit(code, "watchdog" if hung else (last[-1] if last else "")))
            await asyncio.sleep(RESTART_S)  # systemd's restart delay, not a wait for a condition
            self._launch()

    async def _wait(self) -> tuple[int, bool]:
        """Until the worker exits: (exit code, whether the watchdog killed it)."""
        proc = self.cloud.proc
        assert proc is not None
        hung = False
        while True:
            try:
                return await asyncio.to_thread(proc.wait, CHECK_EVERY_S), hung
            except subprocess.TimeoutExpired:
                pass
            if (
                not hung
                and time.monotonic() - max(self._started, self.notify.last_ping) > WATCHDOG_S
            ):
                hung = True
                proc.send_signal(signal.SIGABRT)

    async def stop(self) -> int | None:
        """SIGTERM the cloud and stop restarting it; its exit code (None: was not running)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
            self._task = None
        proc = self.cloud.proc
        code = None
        if proc is not None and proc.poll() is None:
            code = await asyncio.to_thread(self.cloud.stop)
        self.notify.close()  # after the worker's last word (STOPPING=1)
        return code

    def describe(self) -> str:
        """For the table: how the worker came through."""
        if not self.exits:
            return "recovered by itself"
        ends = ", ".join(
            "watchdog kill" if e.why == "watchdog" else f"exit {e.code}" for e in self.exits
        )
        return f"{ends}; restarted"
