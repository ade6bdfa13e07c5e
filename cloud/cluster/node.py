"""One worker of the scaled mode: its heartbeat, its partition leases, one ingest per partition.

Every ``lease_s / 3`` the worker, in one transaction, says it is alive and renews what it
holds; then it computes the same quotas as every other worker (``balance``), gives up what it
has too much of and takes free or expired partitions. Taking partition *n* means: restore its
dedup and rule state from its own checkpoint rows (``dedup.p{n}``...), connect with its own
MQTT client id (``gridalarm-cloud-p{n}``, a persistent session: the broker hands over what the
previous owner never acknowledged) and subscribe to its gateways. Every checkpoint commit
fences on the lease epoch, so an owner that was paused past its lease writes nothing; its
ingress asks before every reconnection whether the lease is still its own, so it never takes
the session back from the new owner either.

A lost lease (renewal refused, or a fenced commit) stops the partition at once without
committing or acknowledging: the new owner gets those messages from the broker again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine as Database

from cloud.cluster import leases
from cloud.cluster.balance import moves
from cloud.cluster.members import heartbeat, leave, live_workers, next_lapse
from cloud.cluster.partition import checkpoint_name, client_id, gateway_topics, partition_of
from cloud.config import CloudMqtt, ClusterConfig
from cloud.dbsession import end_sessions
from cloud.faults import DATABASE, until_done
from cloud.health import Health
from cloud.ingest.checkpoint import read_checkpoint, read_engine_state
from cloud.ingest.devices import load_devices
from cloud.ingest.ingress import Ingress
from cloud.ingest.pipeline import Ingest
from cloud.lifecycle.rule_alarms import AlarmChange
from cloud.metrics import Metrics
from cloud.sinks import ReadingSink
from rules import DeviceInfo, Engine, RuleSet
from wire.dedup import SeqTracker

logger = logging.getLogger(__name__)
T = TypeVar("T")

LAPSE_MARGIN_S = 0.05  # wake this long after a lease's expiry, so the database agrees it has
ACQUIRE_WAIT_S = 2.0  # a takeover waits this long for a lease row's lock, per round
TAKE_CONCURRENCY = 4  # partitions restored at once when several come free together

StaleKeys = Callable[[list[str]], Awaitable[list[str]]]


@dataclass
class Partition:
    """A partition this worker holds, and the tasks that ingest it."""

    lease: leases.Lease
    ingress: Ingress
    ingest: Ingest
    gateways: set[str]
    task: asyncio.Task[None] | None = None
    since: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class Round:
    """What one heartbeat round read from the database."""

    live: list[str]
    rows: list[leases.LeaseRow]
    lost: list[int]
    lapse_s: float | None  # until another worker's heartbeat or lease runs out


class ClusterNode:
    """The partitions one worker holds, kept in step with the lease table."""

    def __init__(
        self,
        worker_id: str,
        db: Database,
        cluster: ClusterConfig,
        mqtt: CloudMqtt,
        rules: RuleSet,
        *,
        sink: ReadingSink | None,
        metrics: Metrics,
        health: Health,
        interval_s: float,
        max_messages: int,
    ) -> None:
        self.worker_id = worker_id
        self.db = db
        self.cluster = cluster
        self._mqtt = mqtt
        self._rules = rules
        self._sink = sink
        self.metrics = metrics
        self.health = health
        self._interval_s = interval_s
        self._max_messages = max_messages
        self.registry: dict[str, DeviceInfo] = {}
        self.partitions: dict[int, Partition] = {}
        self.rows: list[leases.LeaseRow] = []  # the lease table as last read
        self.taken = 0  # partitions this worker took over (for tests and the log)
        self.on_changes: Callable[[list[AlarmChange]], None] | None = None
        self.wait_room: Callable[[], Awaitable[None]] | None = None
        self.stale_keys: StaleKeys | None = None
        self._lost: set[int] = set()
        self._group: asyncio.TaskGroup | None = None
        self._processed = self._duplicates = 0  # of the partitions given up or lost
        self._next_refresh = 0.0
        self._next_sweep = 0.0
        metrics.count_from(self.counts)
        metrics.registry.register(_PartitionMetrics(self))

    # -- start and stop ----------------------------------------------------------------------
    async def open(self) -> None:
        """The lease rows exist, the registry is read."""
        await self._db(
            lambda: leases.create_lease_tables(self.db, self.cluster.partitions), "leases"
        )
        self.registry.update(await self._db(lambda: load_devices(self.db), "reading devices"))

    async def run(self) -> None:
        """Heartbeat, renew, balance, refresh the registry — until cancelled."""
        period = self.cluster.lease_s / 3
        try:
            # the partitions' tasks are supervised here: a fault that is not a lost lease
            # ends the worker, as any other task's would
            async with asyncio.TaskGroup() as self._group:
                while True:
                    started = time.monotonic()
                    lapse_s = await self._round()
                    await self._housekeeping()
                    due = started + period
                    if lapse_s is not None:  # a dead worker's leases: take them as they expire
                        due = min(due, started + lapse_s + LAPSE_MARGIN_S)
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
        finally:
            self._group = None
            await self.close()

    async def close(self) -> None:
        """Stop every partition (committing what was handled), release it, leave the cluster."""
        for p in sorted(self.partitions):
            with contextlib.suppress(Exception):
                await self._give(p)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._leave)

    def _leave(self) -> None:
        with self.db.begin() as conn:
            leave(conn, self.worker_id)

    # -- one round -------------------------------------------------------------------------
    async def _round(self) -> float | None:
        """Renew, drop what was lost, give or take per the quotas; seconds until another
        worker's lease or heartbeat lapses (from the start of the round)."""
        held = [p.lease for p in self.partitions.values()]
        got = await self._db(lambda: self._tick(held), "renewing partition leases")
        self.rows = got.rows
        for p in got.lost + sorted(self._lost):
            await self._drop(p, "its lease was taken over")
        self._lost.clear()
        # a worker whose heartbeat and leases lapsed may be stopped, not dead, with row locks
        # in a session the server does not see as idle: end its sessions before taking over
        lapsed = {r.owner for r in got.rows if r.owner and not r.live} - {self.worker_id}
        for owner in sorted(lapsed - set(got.live)):
            ended = await self._db(
                functools.partial(self._end, owner), f"ending {owner}'s sessions"
            )
            if ended:
                logger.warning("worker %s lapsed: %d of its database sessions ended", owner, ended)
        todo = moves(self.worker_id, got.live, got.rows)
        for p in todo.give:
            await self._give(p)
        if todo.take:
            # a dead worker's partitions come back together: restoring one waits on the
            # database, so several are restored at once (each in its own thread)
            room = asyncio.Semaphore(TAKE_CONCURRENCY)

            async def take(p: int) -> None:
                async with room:
                    lease = await self._db(lambda: self._acquire(p), f"partition {p}: acquiring")
                    if lease is not None:
                        await self._take(lease)

            async with asyncio.TaskGroup() as tg:
                for p in todo.take:
                    tg.create_task(take(p), name=f"cloud.take[{p}]")
        return got.lapse_s

    def _tick(self, held: list[leases.Lease]) -> Round:
        lost: list[int] = []
        ttl = self.cluster.lease_s
        with self.db.begin() as conn:
            heartbeat(conn, self.worker_id)
            for lease in held:
                try:
                    with conn.begin_nested():
                        leases.renew(conn, lease, ttl)
                except leases.Fenced:
                    lost.append(lease.partition)
            live = live_workers(conn, ttl)
            rows = leases.leases(conn)
            lapse_s = next_lapse(conn, self.worker_id, ttl)
        return Round(live, rows, lost, lapse_s)

    def _end(self, worker: str) -> int:
        with self.db.begin() as conn:
            return end_sessions(conn, worker)

    def _acquire(self, partition: int) -> leases.Lease | None:
        # a row locked by a writer is not waited on for long: the round renews this
        # worker's own leases, and the next round tries again
        with self.db.begin() as conn:
            return leases.acquire(
                conn, partition, self.worker_id, self.cluster.lease_s, wait_s=ACQUIRE_WAIT_S
            )

    async def _db(self, op: Callable[[], T], what: str) -> T:
        return await until_done(op, part=DATABASE, health=self.health, what=f"cluster: {what}")

    # -- taking, giving, losing a partition -----------------------------------------------
    async def _take(self, lease: leases.Lease) -> None:
        n, parts = lease.partition, self.cluster.partitions
        suffix = checkpoint_name("", n)

        def mine(gateway: str) -> bool:
            return partition_of(gateway, parts) == n

        own = [d for d in self.registry.values() if mine(d.gateway)]

        def restore() -> tuple[Engine, SeqTracker, dict[str, int]]:
            snapshot = read_engine_state(
                self.db, f"engine_base{suffix}", devices=[d.device for d in own]
            )
            engine = (
                Engine(self._rules) if snapshot is None else Engine.restore(self._rules, snapshot)
            )
            tracker = SeqTracker.restore(read_checkpoint(self.db, f"dedup{suffix}") or {})
            return engine, tracker, read_checkpoint(self.db, f"counts{suffix}") or {}

        engine, tracker, counts = await self._db(restore, f"partition {n}: restoring")
        if self.stale_keys is not None:  # closed by a person while nobody held it
            for key in await self.stale_keys([a.key for a in engine.open_alarms()]):
                engine.close(key)
        gateways = {d.gateway for d in own}

        async def may_connect() -> bool:
            return await self._still_mine(n)

        ingress = Ingress(
            self._mqtt, gateway_topics(gateways), self.health,
            client_id=client_id(n), part=f"ingest.p{n}", may_connect=may_connect,
        )  # fmt: skip
        ingest = Ingest(
            ingress, engine, self.registry, tracker, self.db, sink=self._sink,
            metrics=self.metrics, interval_s=self._interval_s, max_messages=self._max_messages,
            health=self.health, suffix=suffix, fence=lambda conn: leases.fence(conn, lease),
            own_counters=False,
        )  # fmt: skip
        ingest.counts.update(counts)
        ingest.on_changes = self.on_changes
        ingest.wait_room = self.wait_room
        part = self.partitions[n] = Partition(lease, ingress, ingest, gateways)
        ingress.start()
        assert self._group is not None, "partitions are taken inside run()"
        part.task = self._group.create_task(self._serve(part), name=f"cloud.partition[{n}]")
        self.taken += 1
        logger.info("partition %d: taken (epoch %d, %d gateways)", n, lease.epoch, len(gateways))

    async def _serve(self, part: Partition) -> None:
        n = part.lease.partition
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(part.ingest.run(), name=f"cloud.ingest[{n}]")
                tg.create_task(part.ingest.run_commits(), name=f"cloud.commits[{n}]")
                await part.ingress.run()  # returns only when the lease is no longer ours
                raise leases.Fenced(n, self.worker_id, part.lease.epoch)
        except* leases.Fenced:
            logger.warning("partition %d: lost to another worker; stopping it", n)
            self._lost.add(n)

    async def _still_mine(self, partition: int) -> bool:
        part = self.partitions.get(partition)
        if part is None:
            return False

        def check() -> bool:
            try:
                with self.db.begin() as conn:
                    leases.fence(conn, part.lease)
            except leases.Fenced:
                return False
            return True

        return await self._db(check, f"partition {partition}: checking the lease")

    async def _give(self, partition: int) -> None:
        """Hand a partition over cleanly: commit and acknowledge what was handled, release."""
        part = self.partitions.get(partition)
        if part is None:
            return
        await self._stop_tasks(part)
        try:
            await part.ingest.close()
        except* leases.Fenced:
            logger.warning("partition %d: lost while handing it over", partition)
        await part.ingress.stop()
        del self.partitions[partition]
        self._retire(part)
        await self._db(lambda: self._release(part.lease), f"partition {partition}: releasing")
        logger.info("partition %d: given up", partition)

    def _release(self, lease: leases.Lease) -> None:
        with self.db.begin() as conn:
            leases.release(conn, lease)

    async def _drop(self, partition: int, why: str) -> None:
        """The lease is gone: stop without committing or acknowledging anything more."""
        part = self.partitions.pop(partition, None)
        if part is None:
            return
        await self._stop_tasks(part)
        part.ingest.abandon()
        await part.ingress.stop()
        self._retire(part)
        logger.warning("partition %d: dropped (%s)", partition, why)

    def _retire(self, part: Partition) -> None:
        self.health.forget(f"ingest.p{part.lease.partition}")
        self._processed += part.ingest.processed
        self._duplicates += part.ingest.duplicates

    @staticmethod
    async def _stop_tasks(part: Partition) -> None:
        task = part.task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- registry and the rule alarms people close -------------------------------------------
    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now >= self._next_refresh:
            self._next_refresh = now + self.cluster.registry_refresh_s
            await self._refresh_registry()
        if now >= self._next_sweep and self.stale_keys is not None:
            self._next_sweep = now + self.cluster.sweep_s
            for part in list(self.partitions.values()):
                engine = part.ingest.engine
                for key in await self.stale_keys([a.key for a in engine.open_alarms()]):
                    engine.close(key)

    async def _refresh_registry(self) -> None:
        fresh = await self._db(lambda: load_devices(self.db), "reading devices")
        self.registry.update(fresh)
        parts = self.cluster.partitions
        for n, part in self.partitions.items():
            new = {
                d.gateway for d in fresh.values() if partition_of(d.gateway, parts) == n
            } - part.gateways
            if new:
                part.gateways |= new
                part.ingress.add_topics(gateway_topics(new))
                logger.info("partition %d: %d new gateways subscribed", n, len(new))

    def close_rule_alarm(self, key: str) -> None:
        """A person closed *key*: tell the rule engine of its partition, if it is held here
        (otherwise its owner finds it closed on its next sweep)."""
        head = key.split("/", 1)[0]
        device = self.registry.get(head)
        gateway = device.gateway if device is not None else head
        part = self.partitions.get(partition_of(gateway, self.cluster.partitions))
        if part is not None:
            part.ingest.engine.close(key)

    # -- what the node shows -------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for part in self.partitions.values():
            for kind, n in part.ingest.counts.items():
                total[kind] = total.get(kind, 0) + n
        return total

    def lag_s(self, partition: int) -> float:
        """How long the oldest message received for *partition* has waited (0: none)."""
        part = self.partitions.get(partition)
        if part is None or not part.ingress.queue:
            return 0.0
        try:
            return max(0.0, time.monotonic() - part.ingress.queue[0].arrived)
        except IndexError:
            return 0.0

    @property
    def processed(self) -> int:
        """Sequenced messages handled here since start (all partitions ever held)."""
        return self._processed + sum(p.ingest.processed for p in self.partitions.values())

    @property
    def duplicates(self) -> int:
        return self._duplicates + sum(p.ingest.duplicates for p in self.partitions.values())


class _PartitionMetrics(Collector):
    """Per partition: who owns it (1 here), its epoch, lag and handovers."""

    def __init__(self, node: ClusterNode) -> None:
        self._node = node

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        node = self._node
        owned = GaugeMetricFamily(
            "gridalarm_partition_owned",
            "1 when this worker holds the partition",
            labels=["partition"],
        )
        epoch = GaugeMetricFamily(
            "gridalarm_partition_epoch", "The partition lease's fencing epoch", labels=["partition"]
        )
        lag = GaugeMetricFamily(
            "gridalarm_partition_lag_seconds",
            "How long the oldest received message of the partition has waited",
            labels=["partition"],
        )
        handovers = CounterMetricFamily(
            "gridalarm_partition_handovers",
            "Times the partition changed owner (from the lease table)",
            labels=["partition"],
        )
        for row in node.rows:
            label = [str(row.partition)]
            mine = row.partition in node.partitions
            owned.add_metric(label, 1.0 if mine else 0.0)
            epoch.add_metric(label, float(row.epoch))
            lag.add_metric(label, node.lag_s(row.partition) if mine else 0.0)
            handovers.add_metric(label, float(row.handovers))
        yield from (owned, epoch, lag, handovers)
