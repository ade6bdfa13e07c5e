"""Dispatch inside a cloud worker: lifecycle + escalation + channels + the workers' web page.

``open_dispatch`` opens the registry, the channels and the alarm desk (recovered, scheduler
paused until it runs) and builds the web app; the worker runs ``desk.run()`` and serves the
app in its own TaskGroup. Leaving closes them in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.engine import Engine as Database

from cloud.brigade.feed import BrigadeFeed, create_feed_tables
from cloud.brigade.portal import BrigadePortal
from cloud.brigade.sender import BrigadeSender
from cloud.brigade.status import create_status_tables
from cloud.brigade.webhook import WebhookClient
from cloud.cluster.members import live_workers
from cloud.config import BrigadeConfig, ClusterConfig, DispatchConfig
from cloud.dispatch import credentials
from cloud.dispatch.ranking import WorkerIndex
from cloud.dispatch.senders import ChannelSender
from cloud.dispatch.targets import RegistryDispatcher
from cloud.dispatch.texts import NotifyRenderer
from cloud.health import Health
from cloud.lifecycle import AlarmDesk, LifecycleConfig
from cloud.notify import Channel, ConsoleChannel, LinkSigner, TwilioSms, WebPush
from cloud.registry import create_registry_tables, load_registry
from cloud.settings import CloudSettings
from cloud.web.adapter import LifecycleWorkerDesk
from cloud.web.app import create_app
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
    app: FastAPI
    brigade: BrigadeSender  # the webhook task: the worker runs its ``run()``


async def make_channels(
    settings: CloudSettings,
    console: Callable[[str], None] | None,
    stack: contextlib.AsyncExitStack,
) -> dict[str, Channel]:
    """SMS when TWILIO_* is set (GRIDALARM_TWILIO_API_URL for a compatible API); Web Push when
    GRIDALARM_VAPID_PRIVATE_KEY is set; the console channel always (the demo's, the last
    fallback)."""
    channels: dict[str, Channel] = {}
    twilio = credentials.twilio(settings)
    if twilio is not None:
        channels["sms"] = TwilioSms(twilio)
    vapid = credentials.vapid(settings)
    if vapid is not None:
        channels["push"] = await stack.enter_async_context(WebPush(vapid))
    channels["console"] = ConsoleChannel(console) if console is not None else ConsoleChannel()
    return channels


def _link_secret(config: DispatchConfig, settings: CloudSettings) -> str:
    secret = config.link_secret or settings.link_secret
    if secret is not None:
        return secret.get_secret_value()
    logger.warning(
        "dispatch: no link secret configured (GRIDALARM_LINK_SECRET); links made "
        "now stop working when this process restarts"
    )
    return secrets.token_urlsafe(32)


@contextlib.asynccontextmanager
async def open_dispatch(
    config: DispatchConfig,
    lifecycle: LifecycleConfig,
    settings: CloudSettings,
    *,
    database_url: str,
    db: Database,
    devices: dict[str, DeviceInfo],
    engine: Engine | None,
    health: Health | None = None,
    console: Callable[[str], None] | None = None,
    brigade: BrigadeConfig | None = None,
    close_rule_alarm: Callable[[str], object] | None = None,
    worker_id: str = "gridalarm",
    cluster: ClusterConfig | None = None,
) -> AsyncIterator[Dispatch]:
    """*engine*: the one rule engine of a single worker; None in the scaled mode, where each
    partition's engine is held by one worker and *close_rule_alarm* finds it. With *cluster*,
    the desk and the brigade sender sweep for a dead worker's timers and unfinished sends
    (*worker_id* signs this worker's claims)."""
    sweep = cluster.sweep_s if cluster is not None else None
    live = functools.partial(live_workers, within_s=cluster.lease_s) if cluster else None
    await asyncio.to_thread(create_registry_tables, db)
    await asyncio.to_thread(create_feed_tables, db)
    await asyncio.to_thread(create_status_tables, db)
    registry = await asyncio.to_thread(load_registry, db)
    index = WorkerIndex.build(registry)
    stack = contextlib.AsyncExitStack()
    channels = await make_channels(settings, console, stack)
    signer = LinkSigner(_link_secret(config, settings))
    desk = AlarmDesk(
        database_url,
        lifecycle,
        dispatcher=RegistryDispatcher(index, registry, devices),
        sender=ChannelSender(channels, index),
        renderer=NotifyRenderer(
            signer, config.public_base_url, registry, devices, link_ttl_s=config.link_ttl_s
        ),
        close_rule_alarm=close_rule_alarm or (engine.close if engine is not None else None),
        feed=BrigadeFeed(),
        health=health,
        worker_id=worker_id,
        sweep_s=sweep,
        live_workers=live,
    )
    async with stack:
        webhooks = await stack.enter_async_context(WebhookClient(brigade or BrigadeConfig()))
        brigade_sender = BrigadeSender(
            desk.db, brigade or BrigadeConfig(), webhooks, page=desk.page_commander,
            health=health, claimer=worker_id, sweep_s=sweep, live_workers=live,
        )  # fmt: skip
        desk.after_commit.append(brigade_sender.kick)
        await desk.open()
        try:
            if engine is not None:
                for key in await desk.stale_engine_keys([a.key for a in engine.open_alarms()]):
                    engine.close(key)
            twilio = credentials.twilio(settings)
            app = create_app(
                LifecycleWorkerDesk(desk, db, on_position=index.update_position),
                signer,
                twilio_auth_token=twilio.auth_token.get_secret_value() if twilio else None,
                public_base_url=config.public_base_url,
                clock=time.time,
                settings=credentials.web(settings),
                brigades=BrigadePortal(desk),
                photo_dir=config.photo_dir,
            )
            yield Dispatch(desk, index, channels, config.public_base_url, app, brigade_sender)
        finally:
            desk.close()
