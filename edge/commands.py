"""Commands from the cloud (ping, read-now, write-register, reload-config), each with a reply."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from edge.errors import EdgeError
from wire import Command, CommandReply, WireError, decode_command, encode, parse_topic
from wire.topics import reply_topic
from wire.yamlconf import ConfigError

if TYPE_CHECKING:
    from edge.gateway import Gateway
    from edge.poller import BusPoller

logger = logging.getLogger(__name__)


class CommandError(EdgeError):
    """A command that cannot be carried out; the reply carries the message."""


class CommandHandler:
    """Reads commands from the uplink, runs them one by one, publishes the replies."""

    def __init__(self, gateway: Gateway) -> None:
        self._gw = gateway
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "ping": self._ping,
            "read-now": self._read_now,
            "write-register": self._write_register,
            "reload-config": self._reload,
        }
        self.rejected = 0

    async def run(self) -> None:
        while True:
            topic, payload = await self._gw.uplink.incoming.get()
            try:
                command = decode_command(payload)
                command_id = parse_topic(topic).command_id
            except WireError as err:
                self.rejected += 1
                logger.warning("gateway %s: bad command on %s: %s", self._gw.id, topic, err)
                continue
            reply = await self._execute(command)
            self._gw.uplink.publish(
                reply_topic(self._gw.id, command_id or command.id), encode(reply), qos=1
            )

    async def _execute(self, command: Command) -> CommandReply:
        logger.info(
            "gateway %s: command %s %s %s", self._gw.id, command.id, command.cmd, command.args
        )
        try:
            result = await self._handlers[command.cmd](command.args)
        except (EdgeError, ConfigError, ValueError, KeyError) as err:
            logger.warning("gateway %s: command %s failed: %s", self._gw.id, command.id, err)
            return CommandReply(
                gw=self._gw.id, id=command.id, ok=False, ts=time.time(), error=str(err)
            )
        return CommandReply(gw=self._gw.id, id=command.id, ok=True, ts=time.time(), result=result)

    async def _ping(self, _args: dict[str, Any]) -> dict[str, Any]:
        gw = self._gw
        return {
            "pong": True,
            "uptime_s": round(time.time() - gw.started, 3),
            "last_seq": gw.outbox.last_seq,
            "outbox_depth": gw.outbox.depth,
        }

    def _device(self, args: dict[str, Any]) -> tuple[str, BusPoller]:
        device = args.get("device")
        poller = self._gw.poller_of(device) if isinstance(device, str) else None
        if poller is None or not isinstance(device, str):
            raise CommandError(f"unknown device {device!r}")
        return device, poller

    async def _read_now(self, args: dict[str, Any]) -> dict[str, Any]:
        device, poller = self._device(args)
        state = await poller.read_now(device)
        return {
            "device": device,
            "quality": state.quality.value if state.quality else None,
            "values": state.values,
            "error": state.last_error if state.failures else "",
        }

    async def _write_register(self, args: dict[str, Any]) -> dict[str, Any]:
        device, poller = self._device(args)
        address, value = args.get("address"), args.get("value")
        if not isinstance(address, int) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
            raise CommandError("write-register needs integer 'address' and 'value' (0-65535)")
        await poller.write_register(device, address, value)
        poller.request_poll(device)
        return {"device": device, "address": address, "value": value}

    async def _reload(self, _args: dict[str, Any]) -> dict[str, Any]:
        await self._gw.reload()
        return {"devices": len(self._gw.site.config.devices)}
