"""The cloud worker: everything it runs, built in one place and supervised in one TaskGroup.

Start in three steps, each finished before the next begins:

1. ``prepare``: read and validate every input — cloud.yaml, the lifecycle YAML, the rules,
   the district files, the environment's secrets — and report all problems at once (file,
   line, field). Nothing is opened, written or listened on yet.
2. ``bind``: take the listening ports; a busy port is one clear error.
3. ``cloud_worker``: open the database, the sink and the MQTT session, then run every long
   task — ingress, ingest, commits, sink, desk, HTTP servers — as a named task in one
   TaskGroup. Faults that pass (locked database, broker away, provider down) are waited out
   and shown on ``/readyz``; any task that ends with an error ends them all, and the worker
   exits non-zero with a one-line reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import Engine as Database

from cloud.brigade.listener import MutualTlsServer
from cloud.brigade.webhook import tls_problems
from cloud.cluster.node import ClusterNode
from cloud.config import CloudConfig, InfluxSinkConfig, SqliteSinkConfig
from cloud.console import attach_console
from cloud.database import SetupLock, open_database
from cloud.dbsession import named
from cloud.dispatch import credentials
from cloud.dispatch.service import SHIPPED_LIFECYCLE, Dispatch, open_dispatch
from cloud.faults import DATABASE
from cloud.health import Health
from cloud.ingest.checkpoint import read_checkpoint, read_engine_state
from cloud.ingest.devices import load_devices, upsert_devices
from cloud.ingest.ingress import Ingress
from cloud.ingest.pipeline import Ingest
from cloud.lifecycle import LifecycleConfig, load_config, views
from cloud.metrics import Metrics
from cloud.ops import Server, ops_app, serve_readiness
from cloud.registry import check_district, create_registry_tables, import_district
from cloud.sdnotify import Notifier
from cloud.settings import CloudSettings
from cloud.sinks import InfluxSink, ReadingSink, SqliteSink
from rules import DeviceInfo, Engine, RuleSet
from rules.devices_csv import read_devices_csv
from rules.folder import load_rules
from wire.dedup import SeqTracker
from wire.topics import TOPIC_PREFIX
from wire.yamlconf import ConfigError, ConfigIssue, unreadable

logger = logging.getLogger(__name__)
T = TypeVar("T")

GC_YOUNG_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)
TOPICS = [
    f"{TOPIC_PREFIX}/+/status",
    f"{TOPIC_PREFIX}/+/dropped",
    f"{TOPIC_PREFIX}/+/dev/+/data",
    f"{TOPIC_PREFIX}/+/dev/+/event",
]


class PortInUse(Exception):
    """A listening address is taken; ``str()`` is the one line to show."""


@dataclass(frozen=True)
class Plan:
    """Every input, read and validated; nothing opened yet."""

    config: CloudConfig
    settings: CloudSettings
    rules: RuleSet
    lifecycle: LifecycleConfig | None
    devices: list[DeviceInfo] = field(default_factory=list)


def prepare(config: CloudConfig, settings: CloudSettings | None = None) -> Plan:
    """Read and check every input; one ConfigError listing every problem found."""
    settings = settings if settings is not None else CloudSettings()
    issues: list[ConfigIssue] = list(credentials.problems(settings))
    issues += tls_problems(config.brigade, dispatching=config.dispatch is not None)
    rules = _collect(issues, lambda: load_rules(config.rules_dir))
    lifecycle = None
    devices: list[DeviceInfo] = []
    if config.devices_csv is not None:
        path = config.devices_csv
        devices = _collect(issues, lambda: read_devices_csv(_read(path), str(path))) or []
    if config.dispatch is not None:
        path = config.dispatch.lifecycle or SHIPPED_LIFECYCLE
        lifecycle = _collect(issues, lambda: load_config(path))
        if config.dispatch.registry_dir is not None:
            issues += check_district(config.dispatch.registry_dir)
    if issues:
        raise ConfigError(issues)
    assert rules is not None
    if config.cluster is not None:  # the others may have to end this worker's sessions
        named_url = named(config.database_url, worker_name(settings))
        config = config.model_copy(update={"database_url": named_url})
    return Plan(config, settings, rules, lifecycle, devices)


def _collect(issues: list[ConfigIssue], load: Callable[[], T]) -> T | None:
    try:
        return load()
    except ConfigError as err:
        issues.extend(err.issues)
        return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise unreadable(str(path), err) from err


def bind(listen: str, what: str) -> socket.socket:
    """A listening socket on host:port, or PortInUse naming it and the setting to change."""
    host, port = listen.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), int(port)))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise PortInUse(f"{listen} is in use ({err.strerror}); {what}") from err
    sock.setblocking(False)
    return sock


def make_sink(config: CloudConfig) -> ReadingSink | None:
    sink = config.sink
    if isinstance(sink, SqliteSinkConfig):
        return SqliteSink(sink.path, retention_s=sink.retention_s, max_rows=sink.max_rows)
    if isinstance(sink, InfluxSinkConfig):
        token = sink.token.get_secret_value() if sink.token else ""
        return InfluxSink(sink.url, token, sink.org, sink.bucket, batch_size=sink.batch_size)
    return None


def restore_engine(db: Database, rules: RuleSet) -> Engine:
    snapshot = read_engine_state(db)
    if snapshot is None:
        return Engine(rules)
    logger.info("cloud: restoring rule engine state from the last checkpoint")
    return Engine.restore(rules, snapshot)


@dataclass
class Cloud:
    """The parts of a running worker, for tests, the demo and the HTTP side.

    One worker alone has one ``ingest`` for every gateway; one of several (``cluster:``) has a
    ``node`` holding an ingest per partition it owns, and no ``ingest``."""

    config: CloudConfig
    db: Database
    ingest: Ingest | None
    sink: ReadingSink | None
    metrics: Metrics
    health: Health
    dispatch: Dispatch | None = None
    node: ClusterNode | None = None

    @property
    def registry(self) -> dict[str, DeviceInfo]:
        """The devices this worker knows."""
        if self.node is not None:
            return self.node.registry
        assert self.ingest is not None
        return self.ingest.registry

    @property
    def single(self) -> Ingest:
        """The ingest of a worker that runs alone (not in a cluster)."""
        if self.ingest is None:
            raise RuntimeError("a worker in a cluster has one ingest per partition")
        return self.ingest


@contextlib.asynccontextmanager
async def cloud_worker(
    config: CloudConfig,
    *,
    console: Callable[[str], None] | None = None,
    settings: CloudSettings | None = None,
    web_socket: socket.socket | None = None,
) -> AsyncIterator[Cloud]:
    """Prepare, bind, open and run; on exit commit what was handled and close in order.

    *web_socket*: the web server's socket, bound by the caller before it started anything
    else (the demo), instead of binding ``dispatch.http_listen`` here. A task that fails
    cancels the body of the ``async with`` and re-raises here."""
    plan = prepare(config, settings)
    sockets = _bind_all(config, web=web_socket is None)
    if web_socket is not None and config.dispatch is not None:
        sockets["web"] = web_socket
    try:
        async with _running(plan, sockets, console) as cloud:
            yield cloud
    finally:
        for sock in sockets.values():
            sock.close()


def _bind_all(config: CloudConfig, *, web: bool = True) -> dict[str, socket.socket]:
    sockets: dict[str, socket.socket] = {}
    try:
        if config.metrics_listen:
            sockets["ops"] = bind(config.metrics_listen, "set metrics_listen in the cloud config")
        if config.dispatch is not None and web:
            sockets["web"] = bind(
                config.dispatch.http_listen, "set dispatch.http_listen in the cloud config"
            )
        if config.dispatch is not None and config.brigade.listen is not None:
            sockets["brigade"] = bind(
                config.brigade.listen.listen, "set brigade.listen.listen in the cloud config"
            )
    except PortInUse:
        for sock in sockets.values():
            sock.close()
        raise
    return sockets


async def _import_registry(plan: Plan, db: Database) -> None:
    config = plan.config
    if plan.devices:
        count = await asyncio.to_thread(upsert_devices, db, plan.devices)
        logger.info("cloud: registry: %d devices from %s", count, config.devices_csv)
    if config.dispatch is not None and config.dispatch.registry_dir is not None:
        await asyncio.to_thread(create_registry_tables, db)
        counts = await asyncio.to_thread(import_district, db, config.dispatch.registry_dir)
        logger.info("cloud: district imported from %s: %s", config.dispatch.registry_dir, counts)


def worker_name(settings: CloudSettings) -> str:
    """This worker's name among several: GRIDALARM_WORKER_ID, else host name and process id."""
    return settings.worker_id or f"{socket.gethostname()}-{os.getpid()}"


async def _open_node(plan: Plan, db: Database, metrics: Metrics, health: Health) -> Cloud:
    config = plan.config
    assert config.cluster is not None
    sink = make_sink(config)
    node = ClusterNode(
        worker_name(plan.settings), db, config.cluster, config.mqtt, plan.rules, sink=sink,
        metrics=metrics, health=health, interval_s=config.checkpoint_interval_s,
        max_messages=config.checkpoint_max_messages,
    )  # fmt: skip
    await node.open()
    health.mark(DATABASE, True)
    logger.info(
        "cloud: worker %s of a cluster of %d partitions", node.worker_id, config.cluster.partitions
    )
    return Cloud(config, db, None, sink, metrics, health, node=node)


async def _open_ingest(plan: Plan, db: Database, metrics: Metrics, health: Health) -> Cloud:
    config = plan.config
    if config.cluster is not None:
        return await _open_node(plan, db, metrics, health)
    registry = await asyncio.to_thread(load_devices, db)
    engine = restore_engine(db, plan.rules)
    tracker = SeqTracker.restore(read_checkpoint(db, "dedup") or {})
    sink = make_sink(config)
    ingress = Ingress(config.mqtt, TOPICS, health)
    ingest = Ingest(
        ingress, engine, registry, tracker, db, sink=sink, metrics=metrics,
        interval_s=config.checkpoint_interval_s, max_messages=config.checkpoint_max_messages,
        health=health,
    )  # fmt: skip
    ingest.counts.update(read_checkpoint(db, "counts") or {})
    health.mark(DATABASE, True)  # open: the tables were just read and written
    return Cloud(config, db, ingest, sink, metrics, health)


@contextlib.asynccontextmanager
async def _running(
    plan: Plan, sockets: dict[str, socket.socket], console: Callable[[str], None] | None
) -> AsyncIterator[Cloud]:
    config = plan.config
    metrics = Metrics()
    health = Health(metrics.registry)
    setup = await asyncio.to_thread(SetupLock, config.database_url)
    try:
        db = await asyncio.to_thread(open_database, config.database_url)
        await _import_registry(plan, db)
        cloud = await _open_ingest(plan, db, metrics, health)
    except BaseException:
        await asyncio.to_thread(setup.close)
        raise
    stack = contextlib.AsyncExitStack()
    try:
        try:
            if config.dispatch is not None and plan.lifecycle is not None:
                await _open_desk(plan, cloud, stack, console)
        finally:
            await asyncio.to_thread(setup.close)
        servers = _servers(cloud, sockets)
        _settle_heap()
        async with asyncio.TaskGroup() as tg:
            tasks = _start(tg, cloud)
            for n, server in enumerate(servers):
                tg.create_task(server.serve(), name=f"cloud.http[{n}]")
            notifier = Notifier()
            if notifier.enabled:
                tasks.append(tg.create_task(notifier.run(health), name="cloud.sdnotify"))
            try:
                yield cloud
            finally:
                notifier.send("STOPPING=1")
                for server in servers:
                    server.stop()  # finishes the requests in flight, then returns
                for task in tasks:
                    task.cancel()
    finally:
        await _close(cloud, stack)


async def _open_desk(
    plan: Plan,
    cloud: Cloud,
    stack: contextlib.AsyncExitStack,
    console: Callable[[str], None] | None,
) -> None:
    """The alarm desk and the web app, opened before ingest runs: no transition may miss it."""
    config, ingest, node = plan.config, cloud.ingest, cloud.node
    assert config.dispatch is not None and plan.lifecycle is not None
    cloud.dispatch = await stack.enter_async_context(
        open_dispatch(
            config.dispatch, plan.lifecycle, plan.settings,
            database_url=config.database_url, db=cloud.db, devices=cloud.registry,
            engine=ingest.engine if ingest is not None else None,
            health=cloud.health, console=console, brigade=config.brigade,
            close_rule_alarm=node.close_rule_alarm if node is not None else None,
            worker_id=node.worker_id if node is not None else "gridalarm",
            cluster=config.cluster,
        )
    )  # fmt: skip
    desk = cloud.dispatch.desk
    if ingest is not None:
        ingest.on_changes, ingest.wait_room = desk.on_changes, desk.room
    if node is not None:
        node.on_changes, node.wait_room = desk.on_changes, desk.room
        node.stale_keys = desk.stale_engine_keys
    attach_console(
        cloud.dispatch.app, desk, cloud.db, public_base_url=config.dispatch.public_base_url,
        readings=cloud.sink, config=config.dispatch.console,
    )  # fmt: skip


def _start(tg: asyncio.TaskGroup, cloud: Cloud) -> list[asyncio.Task[None]]:
    """The worker's long tasks but the HTTP servers (stopped their own way)."""
    tasks = []
    ingest, node, sink = cloud.ingest, cloud.node, cloud.sink
    if ingest is not None:
        ingest.ingress.start()
        tasks += [
            tg.create_task(ingest.ingress.run(), name="cloud.ingress"),
            tg.create_task(ingest.run(), name="cloud.ingest"),
            tg.create_task(ingest.run_commits(), name="cloud.commits"),
        ]
    if node is not None:
        tasks.append(tg.create_task(node.run(), name="cloud.cluster"))
    if sink is not None:
        tasks.append(tg.create_task(sink.run(), name="cloud.sink"))
    if cloud.dispatch is not None:
        tasks.append(tg.create_task(cloud.dispatch.desk.run(), name="cloud.desk"))
        tasks.append(tg.create_task(cloud.dispatch.brigade.run(), name="cloud.brigade"))
    return tasks


async def _close(cloud: Cloud, stack: contextlib.AsyncExitStack) -> None:
    """Commit what was handled (partitions did on their way out), then close in order."""
    ingest, sink = cloud.ingest, cloud.sink
    if ingest is not None:
        await ingest.close()
    await stack.aclose()
    if ingest is not None:
        await ingest.ingress.stop()
    if sink is not None:
        await sink.flush(5.0)
        await sink.aclose()
    cloud.db.dispose()
    counted = ingest if ingest is not None else cloud.node
    if counted is not None:
        logger.info(
            "cloud: stopped; handled %d sequenced messages, dropped %d redeliveries",
            counted.processed,
            counted.duplicates,
        )


def _settle_heap() -> None:
    """Keep the garbage collector's pauses out of the alarm path.

    A full collection walks every tracked object; after start that is mostly what never goes
    away (modules, rules, registry, district), and walking it stalled the ingest for 100+ ms
    at 20k readings/s. Frozen, those objects are skipped; a larger first threshold makes the
    young collections (cheap, and where the per-message garbage dies) rarer and less often
    promoted. Objects are still freed by reference counting as ever.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _servers(cloud: Cloud, sockets: dict[str, socket.socket]) -> list[Server]:
    """The HTTP servers (ops; the web app when dispatching) and the readiness probes."""
    health, limits = cloud.health, cloud.config.health
    if cloud.ingest is not None:
        _probe_lag(health, lambda: _waited(cloud.single.ingress), limits.max_lag_s)
    node = cloud.node
    if node is not None:
        _probe_lag(
            health, lambda: max((node.lag_s(p) for p in list(node.partitions)), default=0.0),
            limits.max_lag_s,
        )  # fmt: skip
    sink = cloud.sink
    if sink is not None:
        health.probe("sink", lambda: None if sink.available else _sink_problem(sink))
    servers: list[Server] = []
    if "ops" in sockets:
        servers.append(Server(ops_app(cloud.metrics, health), sockets["ops"]))
    if cloud.dispatch is not None:
        db, max_age = cloud.db, limits.max_outbox_age_s
        health.probe("outbox_age", lambda: views.outbox_problem(db, time.time(), max_age))
        serve_readiness(cloud.dispatch.app, health)
        servers.append(Server(cloud.dispatch.app, sockets["web"]))
        listen = cloud.config.brigade.listen
        if listen is not None and "brigade" in sockets:
            servers.append(MutualTlsServer(cloud.dispatch.app, sockets["brigade"], listen))
    return servers


def _sink_problem(sink: ReadingSink) -> str:
    stats = sink.stats
    return f"readings sink unavailable ({stats.last_error}); {stats.buffered} readings buffered"


def _waited(ingress: Ingress) -> float:
    """How long the oldest received message has waited (in the readiness thread: the queue
    may empty meanwhile)."""
    try:
        return time.monotonic() - ingress.queue[0].arrived
    except IndexError:
        return 0.0


def _probe_lag(health: Health, waited: Callable[[], float], max_lag_s: float) -> None:
    def lag() -> str | None:
        oldest = waited()
        if oldest <= max_lag_s:
            return None
        return f"a received message has waited {oldest:.0f} s for the rules"

    health.probe("lag", lag)


async def run_cloud(config: CloudConfig, settings: CloudSettings | None = None) -> None:
    """Run a worker until cancelled (SIGTERM / Ctrl-C) or until a part fails."""
    async with cloud_worker(config, settings=settings) as cloud:
        logger.info(
            "cloud: ingesting from %s; %d devices registered",
            config.mqtt.url,
            len(cloud.registry),
        )
        await asyncio.Event().wait()


def failure_line(err: BaseException) -> str:
    """The one-line reason a worker ended, from what its task group raised."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def serve(config: CloudConfig, settings: CloudSettings | None = None) -> tuple[int, str]:
    """Run a worker in this process until SIGTERM / SIGINT: (exit code, one-line reason).

    2: inputs or ports unusable (every config problem is its own line of the reason);
    1: a part failed for good; 0: stopped by a signal."""
    try:
        asyncio.run(_until_signal(config, settings))
    except PortInUse as err:
        return 2, f"gridalarm cloud: {err}"
    except ConfigError as err:
        return 2, "\n".join(str(i) for i in err.issues)
    except Exception as err:
        logger.critical("cloud worker stopped: %s", failure_line(err), exc_info=err)
        return 1, f"gridalarm cloud: stopped: {failure_line(err)}"
    return 0, ""


async def _until_signal(config: CloudConfig, settings: CloudSettings | None) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def stop() -> None:
        stopping.set()
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        await run_cloud(config, settings)
    except asyncio.CancelledError:
        if not stopping.is_set():
            raise
