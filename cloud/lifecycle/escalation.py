"""Escalation timers on APScheduler, held in memory; the lifecycle tables hold the truth.

Every pending timer is a row of ``lifecycle_alarms`` (the chain's next step and when it is
due, the acknowledgement and on-site deadlines), written in the same transaction as the step
that set it. At start ``AlarmDesk`` schedules every timer the tables say is pending
(``Lifecycle.timers``), so a restart loses none, and each firing is idempotent
(``steps.run_step``), so a timer that fires twice, or late after a restart
(``misfire_grace_time=None``: however late), acts once.

The job store is in memory on purpose: APScheduler queries its store on the event loop, and a
store in a locked or restarting database would stall the whole worker — ingest, readiness,
the outbox — for as long as the lock lasts.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING

from cloud.lifecycle.steps import Timer

logger = logging.getLogger(__name__)

JOB_FUNC = "cloud.lifecycle.escalation:fire"
Handler = Callable[[Timer], Awaitable[None]]

# Jobs name their function by reference (module:function + plain args) and find the running
# desk through this registry by its instance name.
_handlers: dict[str, Handler] = {}


async def fire(instance: str, kind: str, alarm_id: int, token: int) -> None:
    """What every stored job calls."""
    handler = _handlers.get(instance)
    if handler is None:  # the tables still say it is due: the next start's sweep re-adds it
        logger.warning("alarm %d: %s timer fired with no desk %r running", alarm_id, kind, instance)
        return
    await handler(Timer(kind, alarm_id, token, 0.0))


class Escalator:
    """The scheduler: add, ensure and cancel timers (in memory: call them on the loop)."""

    def __init__(self, instance: str, handler: Handler) -> None:
        self.instance = instance
        self._handler = handler
        self._lock = threading.Lock()
        # jobs firing now: APScheduler drops a date job from its store when it starts, and
        # the same id added again while it runs would be skipped (max_instances), not run
        self._running: set[str] = set()
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": MemoryJobStore()},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone=UTC,
        )

    def start(self) -> None:
        """Start on the running event loop (APScheduler needs one)."""
        if self.instance in _handlers:
            raise RuntimeError(f"a desk named {self.instance!r} is running already")
        _handlers[self.instance] = self._fire
        self.scheduler.start(paused=True)  # resumed after the recovery sweep

    async def _fire(self, timer: Timer) -> None:
        self._running.add(timer.job_id)
        try:
            await self._handler(timer)
        finally:
            self._running.discard(timer.job_id)

    def resume(self) -> None:
        self.scheduler.resume()

    def shutdown(self) -> None:
        _handlers.pop(self.instance, None)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def add(self, timers: Iterable[Timer], *, keep_existing: bool = False) -> int:
        """Schedule timers (same id: replaced, or, with *keep_existing*, kept, as is one
        firing now); how many added."""
        added = 0
        with self._lock:
            batch = list(timers)
            pause = len(batch) > 1 and self.scheduler.state == STATE_RUNNING
            if pause:  # one wake-up for the batch instead of one per job
                self.scheduler.pause()
            try:
                for t in batch:
                    if keep_existing and (
                        t.job_id in self._running or self.scheduler.get_job(t.job_id) is not None
                    ):
                        continue
                    self.scheduler.add_job(
                        JOB_FUNC, "date", run_date=datetime.fromtimestamp(t.due_at, UTC),
                        id=t.job_id, args=(self.instance, t.kind, t.alarm_id, t.token),
                        replace_existing=True, name=t.job_id,
                    )  # fmt: skip
                    added += 1
            finally:
                if pause:
                    self.scheduler.resume()
        return added

    def cancel(self, job_ids: Iterable[str]) -> None:
        """Remove timers that are no longer needed (gone already, or ran: fine)."""
        for job_id in job_ids:
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(job_id)
