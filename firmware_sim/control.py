"""Live control of a running simulator: JSON lines over TCP on 127.0.0.1.

Requests are one JSON object per line with an ``op``: ``list``, ``trigger`` (device, event),
``fault`` (device, kind), ``truth`` (device), ``stats``. Replies are one line each:
``{"ok": true, ...}`` or ``{"ok": false, "error": "unknown-device", "message": "..."}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from firmware_sim.errors import UnknownDeviceError, UnknownEventError, UnknownFaultError
from firmware_sim.simset import SimulatorSet

logger = logging.getLogger(__name__)

Reply = dict[str, Any]
ERRORS: dict[type[Exception], str] = {
    UnknownDeviceError: "unknown-device",
    UnknownEventError: "unknown-event",
    UnknownFaultError: "unknown-fault",
}


class ControlServer:
    """Serves the control protocol for one SimulatorSet."""

    def __init__(self, sims: SimulatorSet) -> None:
        self._sims = sims
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._ops: dict[str, Callable[[dict[str, Any]], Reply]] = {
            "list": self._list,
            "trigger": self._trigger,
            "fault": self._fault,
            "truth": self._truth,
            "stats": self._stats,
        }

    async def start(self) -> str:
        """Listen on a free loopback port; returns ``127.0.0.1:PORT``."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def aclose(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()

    def handle(self, request: Any) -> Reply:
        """One request to one reply; never raises."""
        if not isinstance(request, dict) or request.get("op") not in self._ops:
            return {"ok": False, "error": "bad-request", "message": f"ops: {list(self._ops)}"}
        try:
            return self._ops[request["op"]](request)
        except (UnknownDeviceError, UnknownEventError, UnknownFaultError) as err:
            return {"ok": False, "error": ERRORS[type(err)], "message": str(err)}
        except (KeyError, TypeError) as err:
            return {"ok": False, "error": "bad-request", "message": f"missing or bad {err}"}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                try:
                    reply = self.handle(json.loads(line))
                except ValueError:
                    reply = {"ok": False, "error": "bad-request", "message": "not JSON"}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        self._writers.discard(writer)
        writer.close()

    def _list(self, _request: dict[str, Any]) -> Reply:
        return {"ok": True, "devices": [asdict(d) for d in self._sims.devices()]}

    def _trigger(self, request: dict[str, Any]) -> Reply:
        self._sims.device(str(request["device"])).trigger(str(request["event"]))
        logger.info("%s: event %s (control)", request["device"], request["event"])
        return {"ok": True}

    def _fault(self, request: dict[str, Any]) -> Reply:
        self._sims.device(str(request["device"])).set_fault(str(request["kind"]))
        logger.info("%s: fault %s (control)", request["device"], request["kind"])
        return {"ok": True}

    def _truth(self, request: dict[str, Any]) -> Reply:
        return {"ok": True, "truth": self._sims.device(str(request["device"])).truth()}

    def _stats(self, _request: dict[str, Any]) -> Reply:
        buses = [e.bus for e in self._sims.endpoints()]
        return {"ok": True, "stats": {b: asdict(self._sims.stats(b)) for b in buses}}
