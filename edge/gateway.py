"""The gateway daemon: buses → outbox → broker, with commands from the cloud.

One TaskGroup holds the long-lived tasks; cancelling the run (SIGTERM, Ctrl-C) unwinds them,
commits what is queued, publishes the retained "offline" status and closes the outbox.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from pathlib import Path
from typing import Literal

from edge.commands import CommandHandler
from edge.emitter import Emitter, drop_record
from edge.forwarder import Forwarder
from edge.outbox import Outbox
from edge.poller import BusPoller, DeviceState
from edge.site import Site, load_site
from edge.status import StatusWriter
from edge.uplink import LastWill, Uplink
from wire import GatewayStatus, encode
from wire.topics import command_topic, status_topic

logger = logging.getLogger(__name__)

SOFTWARE = "gridalarm-edge/0.1"


class Gateway:
    """Assembles the parts of a running gateway from a loaded Site."""

    def __init__(self, site: Site) -> None:
        self.site = site
        cfg = site.config
        self.id = cfg.gateway_id
        self.outbox = Outbox(
            cfg.outbox.path,
            max_messages=cfg.outbox.max_messages,
            drop_record=functools.partial(drop_record, self.id),
            fsync=cfg.outbox.fsync,
        )
        self.uplink = Uplink(
            cfg.mqtt,
            cfg.mqtt.client_id or f"gridalarm-edge-{self.id}",
            will=LastWill(status_topic(self.id), self._status("offline")),
            on_connect=self._birth,
            subscriptions=[command_topic(self.id, "+")],
        )
        self.forwarder = Forwarder(self.outbox, self.uplink, cfg.mqtt.max_inflight)
        self.emitter = Emitter(self.id, self.outbox, self.forwarder.appended)
        self.pollers: dict[str, BusPoller] = {}
        self._reloaded = asyncio.Event()
        self.started = time.time()

    def _status(self, state: Literal["online", "offline"]) -> bytes:
        status = GatewayStatus(
            gw=self.id,
            state=state,
            ts=time.time(),
            software=SOFTWARE,
            devices=len(self.site.config.devices),
        )
        return encode(status)

    def _birth(self) -> None:
        self.uplink.publish(status_topic(self.id), self._status("online"), qos=1, retain=True)

    def _build_pollers(self) -> dict[str, BusPoller]:
        cfg = self.site.config
        pollers = {}
        for bus in cfg.buses:
            states = [
                DeviceState(d, self.site.profiles.get(d.profile))
                for d in cfg.devices
                if d.bus == bus.id
            ]
            if states:
                pollers[bus.id] = BusPoller(bus, states, self.emitter)
        return pollers

    async def _supervise_pollers(self) -> None:
        """Run one poller per bus; start them afresh whenever the config is reloaded."""
        while True:
            self._reloaded.clear()
            self.pollers = self._build_pollers()
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(p.run(), name=f"edge.poller[{bus_id}]")
                    for bus_id, p in self.pollers.items()
                ]
                await self._reloaded.wait()
                for task in tasks:
                    task.cancel()

    def poller_of(self, device_id: str) -> BusPoller | None:
        return next((p for p in self.pollers.values() if device_id in p.devices), None)

    async def reload(self) -> None:
        """Re-read the config; on any error keep running with the old one (and raise it)."""
        site = await asyncio.to_thread(load_site, self.site.path)
        if site.config.gateway_id != self.id or site.config.outbox != self.site.config.outbox:
            raise ValueError("gateway_id and outbox cannot change on reload; restart the gateway")
        self.site = site
        self._reloaded.set()
        logger.info("gateway %s: config reloaded (%d devices)", self.id, len(site.config.devices))

    async def run(self) -> None:
        """Run until cancelled."""
        commands = CommandHandler(self)
        status = StatusWriter(self, self.site.config.state_dir / "status.json")
        logger.info(
            "gateway %s: starting; outbox holds %d, last seq %d",
            self.id,
            self.outbox.depth,
            self.outbox.last_seq,
        )
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.uplink.run(), name=f"edge.uplink[{self.id}]")
                tg.create_task(self.forwarder.run(), name="edge.forwarder")
                tg.create_task(self.forwarder.run_acks(), name="edge.acks")
                tg.create_task(self.emitter.run(), name="edge.emitter")
                tg.create_task(commands.run(), name="edge.commands")
                tg.create_task(status.run(), name="edge.status")
                tg.create_task(self._supervise_pollers(), name="edge.pollers")
        finally:
            await self._shutdown(status)

    async def _shutdown(self, status: StatusWriter) -> None:
        await self.emitter.flush()
        await self.uplink.close(self._status("offline"))
        await asyncio.to_thread(status.write)
        self.outbox.close()
        logger.info(
            "gateway %s: stopped; %d messages kept in the outbox", self.id, self.outbox.depth
        )


async def run_gateway(config_path: Path) -> None:
    """Load the site (refusing to start on any config error) and run the gateway."""
    site = load_site(config_path)
    await Gateway(site).run()
