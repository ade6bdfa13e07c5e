"""A cloud worker: ingest from the broker, rules into alarms, readings into the sink.

The lifespan owns the long-lived resources (database, sink, MQTT client, metrics) and one
TaskGroup holds the tasks; cancelling the run commits what was handled and stops cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine as Database

from cloud.config import CloudConfig, InfluxSinkConfig, SqliteSinkConfig
from cloud.database import open_database
from cloud.dispatch.service import Dispatch, dispatch_service
from cloud.ingest.checkpoint import read_checkpoint, read_engine_state
from cloud.ingest.devices import load_devices, upsert_devices
from cloud.ingest.ingress import Ingress
from cloud.ingest.pipeline import Ingest
from cloud.metrics import Metrics
from cloud.registry import create_registry_tables, import_district
from cloud.sinks import InfluxSink, ReadingSink, SqliteSink
from rules import Engine
from rules.devices_csv import read_devices_csv
from rules.folder import load_rules
from wire.dedup import SeqTracker
from wire.topics import TOPIC_PREFIX

logger = logging.getLogger(__name__)

TOPICS = [
    f"{TOPIC_PREFIX}/+/status",
    f"{TOPIC_PREFIX}/+/dropped",
    f"{TOPIC_PREFIX}/+/dev/+/data",
    f"{TOPIC_PREFIX}/+/dev/+/event",
]


def make_sink(config: CloudConfig) -> ReadingSink | None:
    sink = config.sink
    if isinstance(sink, SqliteSinkConfig):
        return SqliteSink(sink.path, retention_s=sink.retention_s, max_rows=sink.max_rows)
    if isinstance(sink, InfluxSinkConfig):
        token = sink.token.get_secret_value() if sink.token else ""
        return InfluxSink(sink.url, token, sink.org, sink.bucket, batch_size=sink.batch_size)
    return None


def restore_engine(db: Database, config: CloudConfig) -> Engine:
    ruleset = load_rules(config.rules_dir)
    snapshot = read_engine_state(db)
    if snapshot is None:
        return Engine(ruleset)
    logger.info("cloud: restoring rule engine state from the last checkpoint")
    return Engine.restore(ruleset, snapshot)


@dataclass
class Cloud:
    """The parts of a running worker, for tests and the HTTP side."""

    config: CloudConfig
    db: Database
    ingest: Ingest
    sink: ReadingSink | None
    metrics: Metrics
    dispatch: Dispatch | None = None


@contextlib.asynccontextmanager
async def cloud_worker(
    config: CloudConfig, *, console: Callable[[str], None] | None = None
) -> AsyncIterator[Cloud]:
    """Open everything, run the tasks, and on exit commit and close in order."""
    db = await asyncio.to_thread(open_database, config.database_url)
    if config.devices_csv is not None:
        text = config.devices_csv.read_text(encoding="utf-8")
        count = upsert_devices(db, read_devices_csv(text, str(config.devices_csv)))
        logger.info("cloud: registry: %d devices from %s", count, config.devices_csv)
    if config.dispatch is not None and config.dispatch.registry_dir is not None:
        await asyncio.to_thread(create_registry_tables, db)
        counts = await asyncio.to_thread(import_district, db, config.dispatch.registry_dir)
        logger.info("cloud: district imported from %s: %s", config.dispatch.registry_dir, counts)
    registry = await asyncio.to_thread(load_devices, db)
    engine = restore_engine(db, config)
    tracker = SeqTracker.restore(read_checkpoint(db, "dedup") or {})
    metrics = Metrics()
    if config.metrics_listen:
        metrics.serve(config.metrics_listen)
    sink = make_sink(config)
    ingress = Ingress(config.mqtt, TOPICS)
    ingest = Ingest(
        ingress,
        engine,
        registry,
        tracker,
        db,
        sink=sink,
        metrics=metrics,
        interval_s=config.checkpoint_interval_s,
        max_messages=config.checkpoint_max_messages,
    )
    ingest.counts.update(read_checkpoint(db, "counts") or {})
    cloud = Cloud(config, db, ingest, sink, metrics)
    stack = contextlib.AsyncExitStack()
    try:
        if config.dispatch is not None:  # before ingest starts: no transition may miss the desk
            cloud.dispatch = await stack.enter_async_context(
                dispatch_service(
                    config.dispatch, config.database_url, db, registry, engine, console=console
                )
            )
            ingest.on_changes = cloud.dispatch.desk.on_changes
        async with asyncio.TaskGroup() as tg:
            await ingress.start()
            tasks = [
                tg.create_task(ingest.run(), name="cloud.ingest"),
                tg.create_task(ingest.run_commits(), name="cloud.commits"),
            ]
            if sink is not None:
                tasks.append(tg.create_task(sink.run(), name="cloud.sink"))
            try:
                yield cloud
            finally:
                for task in tasks:
                    task.cancel()
    finally:
        await ingest.close()
        await stack.aclose()
        await ingress.stop()
        if sink is not None:
            await sink.flush(5.0)
            await sink.aclose()
        db.dispose()
        logger.info(
            "cloud: stopped; handled %d sequenced messages, dropped %d redeliveries",
            ingest.processed,
            ingest.duplicates,
        )


async def run_cloud(config: CloudConfig) -> None:
    """Run a worker until cancelled."""
    async with cloud_worker(config) as cloud:
        logger.info(
            "cloud: ingesting from %s; %d devices registered",
            config.mqtt.url,
            len(cloud.ingest.registry),
        )
        await asyncio.Event().wait()
