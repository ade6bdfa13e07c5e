"""What the brigade API works with: the cloud database, the alarm desk and the stream's bell.

Reads run in a thread; a back-channel report is stored first (its own transaction, waited
out through database faults like the desk's work), then followed up: ``dispatched`` and
each request tell the grid worker (one SMS through the outbox), a rejection pages the duty
commander. The follow-ups are idempotent (per brigade; per request), so a report repeated
after a crash between the two steps completes what the first left undone and doubles
nothing.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from cloud.brigade import area, status
from cloud.brigade.answers import PAGE_KIND, Answer, rejection_token
from cloud.brigade.directory import Brigade
from cloud.brigade.facts import BrigadeAlarm, gather
from cloud.brigade.status import BrigadeStatus, Kind, Recorded, Report
from cloud.brigade.stream import Bell, latest_seq
from cloud.faults import DATABASE, until_done
from cloud.lifecycle import AlarmDesk
from cloud.lifecycle.model import Notice, NoticeKind
from cloud.lifecycle.notices import tell
from cloud.lifecycle.updates import key_holder_reached

logger = logging.getLogger(__name__)


class BrigadePortal:
    """The brigade side of the cloud over one alarm desk (whose database has the feed's and
    the reports' tables: ``create_feed_tables``, ``create_status_tables``)."""

    def __init__(self, desk: AlarmDesk, clock: Callable[[], float] = time.time) -> None:
        self.desk = desk
        self.db: Engine = desk.db
        self.clock = clock
        self.bell = Bell()  # the streams wait on it; every commit of the desk rings it
        desk.after_commit.append(self.bell.ring)

    def kick(self) -> None:
        """Wake what waits on the desk's commits (the stream, the webhook sender)."""
        for wake in self.desk.after_commit:
            wake()

    async def _db(self, op: Callable[[], Any], what: str) -> Any:
        return await until_done(op, part=DATABASE, health=self.desk.health, what=what)

    async def alarms(
        self, brigade: Brigade, which: area.Which, since: float | None
    ) -> list[BrigadeAlarm]:
        return await asyncio.to_thread(self._alarms, brigade, which, since)

    def _alarms(
        self, brigade: Brigade, which: area.Which, since: float | None
    ) -> list[BrigadeAlarm]:
        now = self.clock()
        with self.db.connect() as conn:
            ids = area.alarm_ids(conn, brigade, which, since, now)
            return [a for a in (gather(conn, i, now) for i in ids) if a is not None]

    async def alarm(self, brigade: Brigade, alarm_id: int) -> BrigadeAlarm | None:
        """The alarm's facts now; None when unknown or outside the brigade's area."""
        return await asyncio.to_thread(self._alarm, brigade, alarm_id)

    def _alarm(self, brigade: Brigade, alarm_id: int) -> BrigadeAlarm | None:
        with self.db.connect() as conn:
            if not area.visible(conn, brigade, alarm_id):
                return None
            return gather(conn, alarm_id, self.clock())

    async def latest_seq(self) -> int:
        return await asyncio.to_thread(latest_seq, self.db)

    async def report(self, brigade: Brigade, alarm_id: int, report: Report, key: str) -> Recorded:
        """Store the brigade's report (NotVisible, KeyReused) and follow it up."""
        rec: Recorded = await self._db(
            functools.partial(status.record, self.db, brigade, alarm_id, report, key=key,
                              now=self.clock()),
            f"alarm {alarm_id}: storing brigade {brigade.id}'s {report.kind}",
        )  # fmt: skip
        if rec.first:
            logger.info("alarm %d: brigade %s %s %s", alarm_id, brigade.id, report.kind,
                        report.status or report.answer or "")  # fmt: skip
        await self._follow_up(brigade, rec)
        return rec

    async def key_holder_reached(self, alarm_id: int, actor: str, note: str | None) -> bool:
        """Our side reached the key holder: audited, and the brigade told (once)."""
        done: bool = await self._db(
            functools.partial(key_holder_reached, self.db, self.desk.lifecycle.ctx, alarm_id,
                              actor=actor, note=note, now=self.clock()),
            f"alarm {alarm_id}: recording the key holder reached",
        )  # fmt: skip
        if done:
            self.kick()
        return done

    async def _follow_up(self, brigade: Brigade, rec: Recorded) -> None:
        r, actor = rec.report, f"brigade:{brigade.id}"
        token = hashlib.sha256(brigade.id.encode()).hexdigest()[:12]
        if r.kind is Kind.STATUS and r.status is BrigadeStatus.DISPATCHED:
            notice = Notice(NoticeKind.BRIGADE_STATUS, brigade.name, r.status.value, r.eta_s)
            await self._tell(rec.alarm_id, notice, f"{token}-dispatched", actor)
        elif r.kind is Kind.REQUEST:  # a question for our side: the worker must see it now
            notice = Notice(NoticeKind.BRIGADE_REQUEST, brigade.name, text=r.text or "")
            await self._tell(rec.alarm_id, notice, f"{token}-rq{rec.id}", actor)
        elif r.kind is Kind.ANSWER and r.answer is Answer.REJECTED:
            detail = {"brigade": brigade.id, "reason": r.reason, "note": r.text}
            await self.desk.page_commander(
                rec.alarm_id, actor, PAGE_KIND, detail, rejection_token(brigade.id)
            )

    async def _tell(self, alarm_id: int, notice: Notice, token: str, actor: str) -> None:
        told = await self._db(
            functools.partial(tell, self.db, self.desk.lifecycle.ctx, alarm_id, notice,
                              token=token, actor=actor, now=self.clock()),
            f"alarm {alarm_id}: telling its workers the brigade's {notice.kind}",
        )  # fmt: skip
        if told:
            self.desk.outbox.kick()
