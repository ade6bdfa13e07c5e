"""The gateway's status file: what `gridalarm edge status` shows an installer."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.gateway import Gateway

INTERVAL_S = 1.0


class StatusWriter:
    """Writes ``status.json`` atomically once a second."""

    def __init__(self, gateway: Gateway, path: Path) -> None:
        self._gw = gateway
        self.path = path

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self.write)
            await asyncio.sleep(INTERVAL_S)

    def snapshot(self) -> dict[str, Any]:
        gw = self._gw
        fwd = gw.forwarder
        return {
            "gateway": gw.id,
            "pid": os.getpid(),
            "ts": time.time(),
            "started": gw.started,
            "connected": gw.uplink.connected.is_set(),
            "broker": gw.site.config.mqtt.url,
            "outbox_depth": gw.outbox.depth,
            "last_seq": gw.outbox.last_seq,
            "dropped_total": gw.outbox.dropped_total,
            "published": fwd.published,
            "acked": fwd.acked,
            "last_ack_ts": fwd.last_ack_ts,
            "last_publish_ts": fwd.last_publish_ts,
            "buses": {
                bus_id: {"open": p.open.is_set(), "counters": dict(p.bus_counters)}
                for bus_id, p in gw.pollers.items()
            },
            "devices": {
                dev_id: {
                    "bus": p.config.id,
                    "quality": d.quality.value if d.quality else None,
                    "failures": d.failures,
                    "last_error": d.last_error,
                    "counters": dict(d.counters),
                    "values": d.values,
                }
                for p in gw.pollers.values()
                for dev_id, d in p.devices.items()
            },
        }

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot(), indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


def read_status(path: Path) -> dict[str, Any]:
    """Read a status file written by a running (or stopped) gateway."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
