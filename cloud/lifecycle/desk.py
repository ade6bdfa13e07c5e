"""The alarm desk: the lifecycle, its escalation timers and the outbox sender, run together.

``open()`` recovers (outbox ``sending`` rows, orphaned alarms, timers) and starts the
scheduler; ``run()`` is the desk's long task (changes in, outbox out, overdue marks) for the
worker's TaskGroup; ``close()`` stops them. ``async with AlarmDesk(...)`` does all three in a
TaskGroup of its own, for tools and tests. Database faults that pass (locked, restarting,
disk full) are waited out with back-off and shown on the worker's health; the work is done
late, never dropped. Wire ``ingest.on_changes = desk.on_changes``.

Several workers may run a desk each on one PostgreSQL database: steps and actions serialize
on the alarm's row lock, outbox claims skip rows another worker holds, and each desk's
periodic ``sweep`` schedules every pending timer and takes over a dead worker's messages, so
each step and message happens once whichever workers live.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self

from cloud.faults import DATABASE, until_done
from cloud.health import Health
from cloud.lifecycle.config import LifecycleConfig
from cloud.lifecycle.escalation import Escalator
from cloud.lifecycle.lifecycle import Action, Lifecycle
from cloud.lifecycle.model import ActionResult, Outcome
from cloud.lifecycle.overdue import refresh
from cloud.lifecycle.plaintext import PlainRenderer
from cloud.lifecycle.protocols import (
    AlarmFeed,
    CloseRuleAlarm,
    Dispatcher,
    LiveWorkers,
    Renderer,
    Sender,
)
from cloud.lifecycle.reports import HazardReport
from cloud.lifecycle.rule_alarms import AlarmChange
from cloud.lifecycle.sender import OutboxSender
from cloud.lifecycle.steps import StepContext, Timer
from cloud.lifecycle.tables import Borrowed, open_lifecycle_db

logger = logging.getLogger(__name__)

CHANGES_PER_TX = 500  # rule transitions handled per lifecycle transaction
MAX_PENDING_CHANGES = 20_000  # past this, ingest waits before its next checkpoint


class AlarmDesk:
    """Everything that happens to an alarm after the rules raise it."""

    def __init__(
        self,
        db_url: str,
        config: LifecycleConfig,
        *,
        dispatcher: Dispatcher,
        sender: Sender,
        renderer: Renderer | None = None,
        close_rule_alarm: CloseRuleAlarm | None = None,
        feed: AlarmFeed | None = None,
        instance: str = "gridalarm",
        clock: Callable[[], float] = time.time,
        health: Health | None = None,
        worker_id: str = "gridalarm",
        sweep_s: float | None = None,
        live_workers: LiveWorkers | None = None,
    ) -> None:
        """*worker_id* signs this worker's outbox claims (stable across its restarts: at
        start it resends what its last run left ``sending``). *sweep_s*: with several
        workers on one database, every so often adopt orphaned alarms and schedule every
        timer the tables hold (a dead worker's fire here), and, given *live_workers*, resend
        what dead workers left ``sending``. None: one worker, no sweep."""
        self.db = open_lifecycle_db(db_url)
        self._borrowed = Borrowed(self.db)
        self.config = config
        renderer = renderer or PlainRenderer()
        ctx = StepContext(config, dispatcher, renderer, feed)
        self.lifecycle = Lifecycle(self.db, ctx, clock)
        # called on the loop after each lifecycle transaction (e.g. the brigade sender's kick)
        self.after_commit: list[Callable[[], None]] = []
        self.health = health
        self.outbox = OutboxSender(
            self.db, config, sender, renderer, clock=clock, health=health, claimer=worker_id
        )
        self.sweep_s = sweep_s
        self._live = live_workers
        self.escalator = Escalator(instance, self._fire)
        self._close = close_rule_alarm
        self._clock = clock
        self._changes: collections.deque[AlarmChange] = collections.deque()
        self._changes_ready = asyncio.Event()
        self._changes_room = asyncio.Event()
        self._overdue_kick = asyncio.Event()
        self._group: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self.steps_fired = 0
        self.sweeps = 0

    async def open(self) -> None:
        """Recover what a crash left and start the (paused) scheduler; blocking parts in threads."""
        await self._retry(self.outbox.recover, "recovering the outbox")
        self.escalator.start()
        try:
            adopted = await self._retry(self.lifecycle.adopt_orphans, "adopting alarms")
            self.escalator.add(adopted)
            timers = await self._retry(self.lifecycle.timers, "reading timers")
            readded = self.escalator.add(timers, keep_existing=True)
        except BaseException:
            self.escalator.shutdown()
            raise
        if readded:
            logger.info("%d escalation timers scheduled from the lifecycle tables", readded)
        self.escalator.resume()

    async def run(self) -> None:
        """The desk's long tasks, supervised together: if one fails, all stop and it raises."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._consume_changes(), name="lifecycle.changes")
            tg.create_task(self.outbox.run(), name="lifecycle.outbox")
            tg.create_task(self._watch_overdue(), name="lifecycle.overdue")
            if self.sweep_s is not None:
                tg.create_task(self._sweep_every(self.sweep_s), name="lifecycle.sweep")

    def close(self) -> None:
        self.escalator.shutdown()
        self._borrowed.close()  # after the database calls of cancelled tasks end

    async def __aenter__(self) -> Self:
        await self.open()
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._task = self._group.create_task(self.run(), name="lifecycle.desk")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._group is not None and self._task is not None:
                self._task.cancel()
                await self._group.__aexit__(et, ev, tb)
        finally:
            self.close()

    async def _retry(self, op: Callable[[], Any], what: str) -> Any:
        return await until_done(op, part=DATABASE, health=self.health, what=f"alarm desk: {what}")

    # -- rule transitions in -----------------------------------------------------------------
    def on_changes(self, changes: list[AlarmChange]) -> None:
        """Ingest's hook after each committed checkpoint (on the event loop; never blocks)."""
        self._changes.extend(changes)
        self._changes_ready.set()

    async def room(self) -> None:
        """Until the desk has room for more changes (ingest waits here before a checkpoint)."""
        while len(self._changes) >= MAX_PENDING_CHANGES:
            self._changes_room.clear()
            await self._changes_room.wait()

    async def _consume_changes(self) -> None:
        while True:
            await self._changes_ready.wait()
            self._changes_ready.clear()
            while self._changes:
                batch = list(itertools.islice(self._changes, CHANGES_PER_TX))
                # taken off the queue only once applied: a fault waits, it never drops one
                timers = await self._retry(
                    functools.partial(self.lifecycle.apply_changes, batch),
                    f"{len(batch)} rule transitions not applied yet",
                )
                for _ in batch:
                    self._changes.popleft()
                self._changes_room.set()
                self.escalator.add(timers)
                self._committed()
                self._overdue_kick.set()

    # -- timers ------------------------------------------------------------------------------
    async def _fire(self, timer: Timer) -> None:
        nxt = await self._retry(
            functools.partial(self.lifecycle.fire, timer), f"alarm {timer.alarm_id}: step"
        )
        self.steps_fired += 1
        if nxt is not None:
            self.escalator.add([nxt])
        self._committed()

    async def sweep(self) -> None:
        """Take over what another worker left: its ``sending`` messages (if it is dead), the
        alarms it stored but never adopted, its queued messages, and every pending timer
        (kept if scheduled here already). Firing a timer another worker fires too is
        harmless (``steps``)."""
        if self._live is not None:
            live = self._live
            await self._retry(lambda: self.outbox.recover_orphaned(live), "outbox claims")
        adopted = await self._retry(self.lifecycle.adopt_orphans, "adopting alarms")
        self.escalator.add(adopted)
        timers = await self._retry(self.lifecycle.timers, "reading timers")
        self.escalator.add(timers, keep_existing=True)
        # the outboxes too: what a dead worker enqueued and never sent is sent here
        self._committed()

    async def _sweep_every(self, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)  # a period, not a wait for a condition
            await self.sweep()
            self.sweeps += 1

    def _committed(self) -> None:
        self.outbox.kick()
        for kick in self.after_commit:
            kick()

    async def _watch_overdue(self) -> None:
        while True:
            self._overdue_kick.clear()
            flipped, nxt = await self._retry(
                lambda: refresh(self.db, self._clock()), "marking overdue alarms"
            )
            if flipped:
                logger.info("%d alarms became overdue", flipped)
            wait = self.config.overdue_check_max_s
            if nxt is not None:
                wait = min(wait, max(0.0, nxt - self._clock()) + 0.01)
            with contextlib.suppress(TimeoutError):  # not wait_for: see OutboxSender.run
                async with asyncio.timeout(wait):
                    await self._overdue_kick.wait()

    # -- people ------------------------------------------------------------------------------
    async def acknowledge(
        self, alarm_id: int, actor: str, channel: str | None = None, note: str | None = None
    ) -> ActionResult:
        """A person takes the alarm: the chain stops; not on site in time re-arms it."""
        return await self._act(self.lifecycle.acknowledge, alarm_id, actor, channel, note)

    async def arrive(
        self, alarm_id: int, actor: str, channel: str | None = None, note: str | None = None
    ) -> ActionResult:
        """The person is on site."""
        return await self._act(self.lifecycle.arrive, alarm_id, actor, channel, note)

    async def resolve(
        self,
        alarm_id: int,
        actor: str,
        outcome: Outcome,
        channel: str | None = None,
        note: str | None = None,
    ) -> ActionResult:
        """A person closes the alarm with an outcome (and the rule engine's alarm with it)."""
        return await self._act(self.lifecycle.resolve, alarm_id, actor, outcome, channel, note)

    async def need_help(
        self, alarm_id: int, actor: str, channel: str | None = None, note: str | None = None
    ) -> ActionResult:
        """A worker asks for help: the escalation's next step runs at once."""
        return await self._act(self.lifecycle.need_help, alarm_id, actor, channel, note)

    async def report(self, report: HazardReport) -> int:
        """A worker's hazard report becomes an alarm, dispatched at once; its alarm id."""
        alarm_id, timers = await self._retry(
            functools.partial(self.lifecycle.report, report), "storing a hazard report"
        )
        self.escalator.add(timers)
        self._committed()
        self._overdue_kick.set()
        return int(alarm_id)

    async def verify(
        self, alarm_id: int, actor: str, channel: str | None = None, note: str | None = None
    ) -> ActionResult:
        """The worker on site confirms the alarm is real (the alarm stays open)."""
        return await self._act(self.lifecycle.verify, alarm_id, actor, channel, note)

    async def page_commander(
        self, alarm_id: int, actor: str, kind: str, detail: dict[str, Any], token: str
    ) -> bool:
        """Page the duty commander about *alarm_id* once per *token* (see Lifecycle)."""
        done = await self._retry(
            functools.partial(self.lifecycle.page_commander, alarm_id, actor, kind, detail, token),
            f"alarm {alarm_id}: paging the duty commander",
        )
        self._committed()
        return bool(done)

    async def _act(self, fn: Callable[..., Action], *args: Any) -> ActionResult:
        action = await asyncio.to_thread(fn, *args)
        if action.cancel:
            self.escalator.cancel(action.cancel)
        if action.timers:
            self.escalator.add(action.timers)
        if action.close_key is not None and self._close is not None:
            self._close(action.close_key)  # on the loop: the engine is not thread-safe
        if action.result.changed:
            self._committed()
        self._overdue_kick.set()
        return action.result

    async def stale_engine_keys(self, open_keys: Iterable[str]) -> list[str]:
        """At start, before ingest runs: engine keys to close again (see Lifecycle)."""
        return await asyncio.to_thread(self.lifecycle.stale_engine_keys, list(open_keys))
