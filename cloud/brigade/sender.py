"""The brigade webhook task: claim due messages, POST them signed, record how each ended.

Woken by ``kick()`` (the desk calls it after each lifecycle transaction) or when the next
retry falls due. A claim is committed ``sending`` before the POST, so a kill -9 at any point
sends the message again under the same idempotency key. A brigade whose webhook keeps
failing is a part in fault on ``/readyz`` (``brigade.<id>``): one log line when it starts,
one when it recovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Engine

from cloud.brigade import delivery, directory
from cloud.brigade.answers import PAGE_KIND, rejection_token
from cloud.brigade.body import CONTENT_TYPE, Message, encode_json
from cloud.brigade.cap import CAP_CONTENT_TYPE, encode_cap
from cloud.brigade.delivery import Sent
from cloud.brigade.directory import WebhookFormat
from cloud.brigade.signing import IDEMPOTENCY_HEADER, sign
from cloud.brigade.webhook import Post
from cloud.config import BrigadeConfig
from cloud.faults import DATABASE, until_done
from cloud.health import Health
from cloud.lifecycle.protocols import LiveWorkers

logger = logging.getLogger(__name__)
T = TypeVar("T")

IDLE_WAIT_S = 60.0  # longest sleep with nothing due (a kick wakes it sooner)
FAULT_AFTER = 3  # failures running before a brigade shows as a fault (one is a blip)
Pager = Callable[[int, str, str, dict[str, Any], str], Awaitable[bool]]


class Poster(Protocol):
    async def post(
        self, brigade_id: str, urls: list[str], body: bytes, headers: dict[str, str]
    ) -> Post: ...


class BrigadeSender:
    """Pushes the brigade queue out; ``run()`` is its long task."""

    def __init__(
        self, db: Engine, config: BrigadeConfig, poster: Poster, *, page: Pager | None = None,
        clock: Callable[[], float] = time.time, health: Health | None = None,
        claimer: str = "gridalarm", sweep_s: float | None = None,
        live_workers: LiveWorkers | None = None,
    ) -> None:  # fmt: skip
        """*claimer*: this cloud worker's id, signing its claims (stable across restarts).
        With several workers, every *sweep_s* the ``sending`` rows of workers that
        *live_workers* does not list are sent again (None: no sweep)."""
        self._db = db
        self.claimer = claimer
        self._sweep_s = sweep_s
        self._live = live_workers
        self._cfg = config
        self._poster = poster
        self._page = page
        self._clock = clock
        self._health = health
        self._failing: set[str] = set()
        self._failures: dict[str, int] = {}  # consecutive failures that pass, per brigade
        self._in_flight = 0
        self._kick = asyncio.Event()
        self.delivered = 0
        self.failed_attempts = 0

    def kick(self) -> None:
        self._kick.set()

    def recover(self) -> int:
        """At start (blocking): our ``sending`` rows had an unknown outcome; send them again."""
        with self._db.begin() as conn:
            n = delivery.recover_sending(conn, self.claimer)
        if n:
            logger.warning("brigade webhooks: %d were being sent at a crash: resending, "
                           "same idempotency keys", n)  # fmt: skip
        return n

    def recover_orphaned(self, live: LiveWorkers) -> int:
        """(Blocking) ``sending`` rows of workers *live* does not list: send them again."""
        with self._db.begin() as conn:
            n = delivery.recover_orphaned(conn, {self.claimer, *live(conn)})
        if n:
            logger.warning("brigade webhooks: %d were being sent by a worker that died: "
                           "resending, same idempotency keys", n)  # fmt: skip
        return n

    async def _sweep_every(self, period_s: float) -> None:
        """With several workers: take over dead workers' claims, and look at the queue
        (what another worker's transactions queued kicks only that worker)."""
        while True:
            await asyncio.sleep(period_s)  # a period, not a wait for a condition
            if self._live is not None:
                live = self._live
                await self._db_call(functools.partial(self.recover_orphaned, live), "recovering")
            self.kick()

    async def run(self) -> None:
        """Claim what is due and POST each message in a task of its own, so a brigade that
        hangs until the timeout holds up no other brigade's alarm."""
        await self._db_call(self.recover, "recovering")
        async with asyncio.TaskGroup() as posts:
            if self._sweep_s is not None:
                posts.create_task(self._sweep_every(self._sweep_s), name="brigade.sweep")
            while True:
                self._kick.clear()
                room = self._cfg.batch - self._in_flight
                if room <= 0:
                    await self._kick.wait()  # a post that ends kicks
                    continue
                claimed = await self._db_call(
                    functools.partial(self._claim, room), "claiming messages"
                )
                for msg, b, secret in claimed:
                    self._in_flight += 1
                    posts.create_task(self._deliver(msg, b, secret),
                                      name=f"brigade.post[{msg.message_id}@{b.id}]")  # fmt: skip
                if len(claimed) == room:
                    continue  # more may be due; the in-flight posts kick when they end
                await self._idle()

    async def _idle(self) -> None:
        if self._failing:
            failing = sorted(self._failing)  # a copy: the post tasks change the set
            idle = await self._db_call(functools.partial(self._idle_of, failing), "reading")
            for b in idle:  # nothing left to send: no longer a fault of ours to show
                self._failures.pop(b, None)
                self._mark(b, ok=True)
        wake = await self._db_call(self._next_wake, "reading the next retry time")
        timeout = IDLE_WAIT_S if wake is None else max(0.0, wake - self._clock())
        with contextlib.suppress(TimeoutError):  # not wait_for: see OutboxSender.run
            async with asyncio.timeout(min(timeout, IDLE_WAIT_S)):
                await self._kick.wait()

    async def _deliver(self, msg: Message, b: directory.Brigade, secret: str) -> None:
        """POST one message, record how it ended, page on a rejection; then the loop looks
        again (the alarm's next message may be claimable now)."""
        try:
            result = await self._send(msg, b, secret)
            pages = await self._db_call(functools.partial(self._store, result), "recording")
            self._account(result)
            await self._page_rejections(pages)
        finally:
            self._in_flight -= 1
            self.kick()

    async def _db_call(self, op: Callable[[], T], what: str) -> T:
        return await until_done(op, part=DATABASE, health=self._health, what=f"brigade: {what}")

    def _claim(self, limit: int) -> list[tuple[Message, directory.Brigade, str]]:
        with self._db.begin() as conn:
            msgs = delivery.claim(conn, self._clock(), limit, self.claimer)
            found: dict[str, tuple[directory.Brigade, str]] = {}
            for b in {msg.brigade_id for msg in msgs}:
                found[b] = (directory.brigade(conn, b), directory.signing_secret(conn, b))
        return [(msg, *found[msg.brigade_id]) for msg in msgs]

    def _next_wake(self) -> float | None:
        with self._db.connect() as conn:
            return delivery.next_wake(conn)

    def encode(self, msg: Message, fmt: WebhookFormat) -> tuple[bytes, str]:
        if fmt is WebhookFormat.CAP:
            return encode_cap(msg, self._cfg.sender), CAP_CONTENT_TYPE
        return encode_json(msg), CONTENT_TYPE

    async def _send(self, msg: Message, b: directory.Brigade, secret: str) -> Sent:
        try:
            body, ctype = self.encode(msg, b.format)
        except Exception as err:
            logger.exception("alarm %d: brigade %s: %s not encodable", msg.alarm_id, b.id,
                             msg.message_id)  # fmt: skip
            return Sent(msg, error=f"not encodable: {type(err).__name__}: {err}"[:300])
        # signed at the wall clock: the receiver checks the timestamp against its own
        headers = {**sign(secret, body, time.time()), IDEMPOTENCY_HEADER: msg.message_id,
                   "Content-Type": ctype}  # fmt: skip
        post = await self._poster.post(b.id, [str(u) for u in b.webhook_urls], body, headers)
        return Sent(msg, post.delivered, post.retryable, post.error, post.status, post.answer)

    def _store(self, r: Sent) -> list[Sent]:
        with self._db.begin() as conn:
            return delivery.record(conn, [r], self._cfg, self._clock(), self.claimer)

    def _account(self, r: Sent) -> None:
        """Counters, the log line and the brigade's health (on the loop: tasks share them)."""
        msg = r.message
        if r.delivered:
            self.delivered += 1
            logger.info("alarm %d: brigade %s: %s delivered (HTTP %s)", msg.alarm_id,
                        msg.brigade_id, msg.message_id, r.status)  # fmt: skip
        else:
            self.failed_attempts += 1
            logger.info("alarm %d: brigade %s: %s attempt %d failed%s: %s", msg.alarm_id,
                        msg.brigade_id, msg.message_id, msg.attempts,
                        "" if r.retryable else " for good", r.error)  # fmt: skip
        self._brigade_health(r)

    def _brigade_health(self, r: Sent) -> None:
        """A brigade whose webhook failed FAULT_AFTER times running, in a way that passes, is
        in fault; one that took a message is fine again. A refusal says nothing of it."""
        b = r.message.brigade_id
        if r.delivered:
            self._failures.pop(b, None)
            if b in self._failing:
                self._mark(b, ok=True)
        elif r.retryable:
            self._failures[b] = self._failures.get(b, 0) + 1
            if self._failures[b] >= FAULT_AFTER:
                self._mark(b, ok=False, why=f"webhook failing, retrying: {r.error}")

    def _mark(self, brigade_id: str, *, ok: bool, why: str = "") -> None:
        if ok:
            self._failing.discard(brigade_id)
        else:
            self._failing.add(brigade_id)
        if self._health is not None:
            self._health.mark(f"brigade.{brigade_id}", ok, why)

    def _idle_of(self, brigades: list[str]) -> list[str]:
        """Those of *brigades* with nothing left to deliver (all dead, or delivered)."""
        with self._db.connect() as conn:
            return [b for b in brigades if not delivery.has_open(conn, b)]

    async def _page_rejections(self, pages: list[Sent]) -> None:
        if self._page is None:
            return
        for r in pages:
            msg, answer = r.message, r.answer
            assert answer is not None
            detail = {"brigade": msg.brigade_id, "message_id": msg.message_id,
                      **answer.model_dump(mode="json", exclude_none=True)}  # fmt: skip
            logger.warning("alarm %d: brigade %s rejected it (%s): paging the duty commander",
                           msg.alarm_id, msg.brigade_id, answer.reason)  # fmt: skip
            await self._page(msg.alarm_id, f"brigade:{msg.brigade_id}", PAGE_KIND, detail,
                             rejection_token(msg.brigade_id))  # fmt: skip
