"""Telling systemd how the worker is (sd_notify): ready, still alive, and why not ready.

With ``Type=notify`` and ``WatchdogSec=`` in the unit, systemd starts counting the worker as
up only after ``READY=1`` and restarts it when the ``WATCHDOG=1`` pings stop — they come from
a task of the worker's event loop, so a loop that hangs (blocked, deadlocked) is restarted.
A fault the worker waits out (a locked database) does not stop the pings: it shows in
``STATUS=`` and on /readyz instead. Outside systemd (no ``NOTIFY_SOCKET``) all of this is
silent. The protocol is one datagram per message on a Unix socket; no library needed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from cloud.health import Health

logger = logging.getLogger(__name__)

STATUS_EVERY_S = 5.0


class Notifier:
    """Sends sd_notify messages to ``$NOTIFY_SOCKET`` when there is one."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._shown = address  # as systemd wrote it: "@name" for the abstract namespace
        if address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address or None
        self._failing = False
        usec = env.get("WATCHDOG_USEC", "")
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 else None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *fields: str) -> None:
        if self._address is None:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto("\n".join(fields).encode(), self._address)
            except OSError as err:  # systemd gone or socket wrong: never a reason to stop
                if not self._failing:
                    logger.warning("sd_notify to %s failed: %s", self._shown, err)
                self._failing = True
                return
        if self._failing:
            logger.warning("sd_notify to %s works again", self._shown)
        self._failing = False

    async def run(self, health: Health) -> None:
        """READY=1 now; then WATCHDOG=1 at half the watchdog interval and STATUS= lines."""
        self.send("READY=1", f"STATUS={_status(health)}")
        every = min(self.watchdog_s / 2, STATUS_EVERY_S) if self.watchdog_s else STATUS_EVERY_S
        while True:
            await asyncio.sleep(every)
            fields = [f"STATUS={_status(health)}"]
            if self.watchdog_s:
                fields.insert(0, "WATCHDOG=1")
            self.send(*fields)


def _status(health: Health) -> str:
    ok, parts = health.ready(probes=False)
    if ok:
        return "ready"
    return "not ready: " + "; ".join(f"{k}: {v}" for k, v in parts.items() if v != "ok")[:400]
