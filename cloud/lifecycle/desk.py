"""The alarm desk: the lifecycle, its escalation timers and the outbox sender, run together.

``async with AlarmDesk(...) as desk`` opens the database, recovers (outbox ``sending`` rows,
orphaned alarms, timers), starts the scheduler and the background tasks; leaving it stops
them. Wire ``ingest.on_changes = desk.on_changes``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self

from cloud.lifecycle.config import LifecycleConfig
from cloud.lifecycle.escalation import Escalator
from cloud.lifecycle.lifecycle import Action, Lifecycle
from cloud.lifecycle.model import ActionResult, Outcome
from cloud.lifecycle.overdue import refresh
from cloud.lifecycle.plaintext import PlainRenderer
from cloud.lifecycle.protocols import CloseRuleAlarm, Dispatcher, Renderer, Sender
from cloud.lifecycle.rule_alarms import AlarmChange
from cloud.lifecycle.sender import OutboxSender
from cloud.lifecycle.steps import StepContext, Timer
from cloud.lifecycle.tables import open_lifecycle_db

logger = logging.getLogger(__name__)

CHANGES_PER_TX = 500  # rule transitions handled per lifecycle transaction


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
        instance: str = "gridalarm",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = open_lifecycle_db(db_url)
        self.config = config
        renderer = renderer or PlainRenderer()
        self.lifecycle = Lifecycle(self.db, StepContext(config, dispatcher, renderer), clock)
        self.outbox = OutboxSender(self.db, config, sender, renderer, clock)
        self.escalator = Escalator(self.db, instance, self._fire)
        self._close = close_rule_alarm
        self._clock = clock
        self._changes: collections.deque[AlarmChange] = collections.deque()
        self._changes_ready = asyncio.Event()
        self._overdue_kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.steps_fired = 0

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.outbox.recover)
        self.escalator.start()
        try:
            adopted = await asyncio.to_thread(self.lifecycle.adopt_orphans)
            await asyncio.to_thread(self.escalator.add, adopted)
            timers = await asyncio.to_thread(self.lifecycle.timers)
            readded = await asyncio.to_thread(self.escalator.add, timers, keep_existing=True)
        except BaseException:
            self.escalator.shutdown()
            raise
        if readded:
            logger.warning("re-added %d escalation timers missing from the job store", readded)
        self.escalator.resume()
        self._task = asyncio.create_task(self._run(), name="lifecycle.desk")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.escalator.shutdown()
        self.db.dispose()

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._consume_changes(), name="lifecycle.changes")
            tg.create_task(self.outbox.run(), name="lifecycle.outbox")
            tg.create_task(self._watch_overdue(), name="lifecycle.overdue")

    # -- rule transitions in -----------------------------------------------------------------
    def on_changes(self, changes: list[AlarmChange]) -> None:
        """Ingest's hook after each committed checkpoint (on the event loop; never blocks)."""
        self._changes.extend(changes)
        self._changes_ready.set()

    async def _consume_changes(self) -> None:
        while True:
            await self._changes_ready.wait()
            self._changes_ready.clear()
            while self._changes:
                n = min(len(self._changes), CHANGES_PER_TX)
                batch = [self._changes.popleft() for _ in range(n)]
                try:
                    timers = await asyncio.to_thread(self.lifecycle.apply_changes, batch)
                except Exception:  # the alarms are stored: the next start adopts them
                    logger.exception("lifecycle: %d rule transitions not applied", len(batch))
                    continue
                await asyncio.to_thread(self.escalator.add, timers)
                self.outbox.kick()
                self._overdue_kick.set()

    # -- timers ------------------------------------------------------------------------------
    async def _fire(self, timer: Timer) -> None:
        nxt = await asyncio.to_thread(self.lifecycle.fire, timer)
        self.steps_fired += 1
        if nxt is not None:
            await asyncio.to_thread(self.escalator.add, [nxt])
        self.outbox.kick()

    async def _watch_overdue(self) -> None:
        while True:
            self._overdue_kick.clear()
            flipped, nxt = await asyncio.to_thread(refresh, self.db, self._clock())
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
        result = await self._act(self.lifecycle.need_help, alarm_id, actor, channel, note)
        self.outbox.kick()
        return result

    async def _act(self, fn: Callable[..., Action], *args: Any) -> ActionResult:
        action = await asyncio.to_thread(fn, *args)
        if action.cancel:
            await asyncio.to_thread(self.escalator.cancel, action.cancel)
        if action.timers:
            await asyncio.to_thread(self.escalator.add, action.timers)
        if action.close_key is not None and self._close is not None:
            self._close(action.close_key)  # on the loop: the engine is not thread-safe
        self._overdue_kick.set()
        return action.result

    async def stale_engine_keys(self, open_keys: Iterable[str]) -> list[str]:
        """At start, before ingest runs: engine keys to close again (see Lifecycle)."""
        return await asyncio.to_thread(self.lifecycle.stale_engine_keys, list(open_keys))
