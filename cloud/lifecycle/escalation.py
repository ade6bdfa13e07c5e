"""Escalation timers on APScheduler with a persistent job store in the cloud database.

The job store holds the timers; the lifecycle tables hold the truth. APScheduler removes a
one-shot job from its store when it submits it, before it runs: a crash in between would
lose the step. So at start ``AlarmDesk`` re-adds every timer the tables say is pending
(``Lifecycle.timers``) under the same job id — a job that exists already is left alone — and
each firing is idempotent (``steps.run_step``), so a timer that fires twice, or late after a
restart (``misfire_grace_time=None``: however late), acts once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from sqlalchemy.engine import Engine

from cloud.lifecycle.steps import Timer

logger = logging.getLogger(__name__)

JOB_TABLE = "escalation_jobs"
JOB_FUNC = "cloud.lifecycle.escalation:fire"
Handler = Callable[[Timer], Awaitable[None]]

# Jobs are stored by reference (module:function + plain args), so they find the running desk
# through this registry by its instance name — stable across restarts.
_handlers: dict[str, Handler] = {}


async def fire(instance: str, kind: str, alarm_id: int, token: int) -> None:
    """What every stored job calls."""
    handler = _handlers.get(instance)
    if handler is None:  # the tables still say it is due: the next start's sweep re-adds it
        logger.warning("alarm %d: %s timer fired with no desk %r running", alarm_id, kind, instance)
        return
    await handler(Timer(kind, alarm_id, token, 0.0))


class Escalator:
    """The scheduler: add, ensure and cancel timers (blocking calls: run them in a thread)."""

    def __init__(self, jobs_db: Engine, instance: str, handler: Handler) -> None:
        self.instance = instance
        self._handler = handler
        self._lock = threading.Lock()
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=jobs_db, tablename=JOB_TABLE)},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone=UTC,
        )

    def start(self) -> None:
        """Start on the running event loop (APScheduler needs one)."""
        if self.instance in _handlers:
            raise RuntimeError(f"a desk named {self.instance!r} is running already")
        _handlers[self.instance] = self._handler
        self.scheduler.start(paused=True)  # resumed after the recovery sweep

    def resume(self) -> None:
        self.scheduler.resume()

    def shutdown(self) -> None:
        _handlers.pop(self.instance, None)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def add(self, timers: Iterable[Timer], *, keep_existing: bool = False) -> int:
        """Schedule timers (same id: replaced, or kept with *keep_existing*); how many added."""
        added = 0
        with self._lock:
            batch = list(timers)
            pause = len(batch) > 1 and self.scheduler.state == STATE_RUNNING
            if pause:  # one wake-up for the batch instead of one per job
                self.scheduler.pause()
            try:
                for t in batch:
                    if keep_existing and self.scheduler.get_job(t.job_id) is not None:
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
