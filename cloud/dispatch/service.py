"""Dispatch inside a cloud worker: lifecycle + escalation + channels + the workers' web page.

Owned by the worker's lifespan: entering opens the registry, the channels, the alarm desk
(APScheduler, outbox) and the HTTP server; leaving closes them in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy.engine import Engine as Database

from cloud.config import DispatchConfig
from cloud.dispatch.ranking import WorkerIndex
from cloud.dispatch.senders import ChannelSender
from cloud.dispatch.targets import RegistryDispatcher
from cloud.dispatch.texts import NotifyRenderer
from cloud.lifecycle import AlarmDesk, load_config
from cloud.notify import (
    Channel,
    ConsoleChannel,
    LinkSigner,
    TwilioSettings,
    TwilioSms,
    VapidSettings,
    WebPush,
)
from cloud.registry import create_registry_tables, load_registry
from cloud.web.adapter import LifecycleWorkerDesk
from cloud.web.app import create_app
from cloud.web.settings import WebSettings
from rules import DeviceInfo, Engine

logger = logging.getLogger(__name__)

SHIPPED_LIFECYCLE = Path(__file__).with_name("lifecycle.yaml")


@dataclass
class Dispatch:
    """The running dispatch side (tests and the demo reach in here)."""

    desk: AlarmDesk
    index: WorkerIndex
    channels: dict[str, Channel]
    base_url: str


async def make_channels(
    console: Callable[[str], None] | None, stack: contextlib.AsyncExitStack
) -> dict[str, Channel]:
    """SMS when TWILIO_* is set (GRIDALARM_TWILIO_API_URL for a compatible API); Web Push when
    GRIDALARM_VAPID_PRIVATE_KEY is set; the console channel always (the demo's, the last
    fallback)."""
    channels: dict[str, Channel] = {}
    twilio = TwilioSettings.from_env()
    if twilio is not None:
        channels["sms"] = TwilioSms(twilio)
    vapid = VapidSettings.from_env()
    if vapid is not None:
        channels["push"] = await stack.enter_async_context(WebPush(vapid))
    channels["console"] = ConsoleChannel(console) if console is not None else ConsoleChannel()
    return channels


def _link_secret(config: DispatchConfig) -> str:
    if config.link_secret is not None:
        return config.link_secret.get_secret_value()
    env = os.environ.get("GRIDALARM_LINK_SECRET", "")
    if env:
        return env
    logger.warning(
        "dispatch: no link secret configured (GRIDALARM_LINK_SECRET); links made "
        "now stop working when this process restarts"
    )
    return secrets.token_urlsafe(32)


@contextlib.asynccontextmanager
async def dispatch_service(
    config: DispatchConfig,
    database_url: str,
    db: Database,
    devices: dict[str, DeviceInfo],
    engine: Engine,
    *,
    console: Callable[[str], None] | None = None,
) -> AsyncIterator[Dispatch]:
    await asyncio.to_thread(create_registry_tables, db)
    registry = await asyncio.to_thread(load_registry, db)
    index = WorkerIndex.build(registry)
    stack = contextlib.AsyncExitStack()
    channels = await make_channels(console, stack)
    signer = LinkSigner(_link_secret(config))
    desk = AlarmDesk(
        database_url,
        load_config(config.lifecycle or SHIPPED_LIFECYCLE),
        dispatcher=RegistryDispatcher(index, registry, devices),
        sender=ChannelSender(channels, index),
        renderer=NotifyRenderer(
            signer, config.public_base_url, registry, devices, link_ttl_s=config.link_ttl_s
        ),
        close_rule_alarm=engine.close,
    )
    async with stack, desk:
        for key in await desk.stale_engine_keys([a.key for a in engine.open_alarms()]):
            engine.close(key)
        twilio = TwilioSettings.from_env()
        app = create_app(
            LifecycleWorkerDesk(desk, db, on_position=index.update_position),
            signer,
            twilio_auth_token=twilio.auth_token.get_secret_value() if twilio is not None else "",
            public_base_url=config.public_base_url,
            clock=time.time,
            settings=WebSettings.from_env(),  # GRIDALARM_ADMIN_TOKEN, GRIDALARM_VAPID_*
        )
        host, port = config.http_listen.rsplit(":", 1)
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=int(port), log_level="warning", lifespan="off")
        )
        serving = asyncio.create_task(server.serve(), name="cloud.http")
        try:
            yield Dispatch(desk, index, channels, config.public_base_url)
        finally:
            server.should_exit = True
            await asyncio.wait({serving}, timeout=10)
