"""The outbox sender task: summaries, claims, sends through the Sender, records results.

Several cloud workers may send one database's outbox: each signs its claims with its
``claimer`` id. At start a worker resends what its previous run left ``sending``
(``recover``); while running, what a dead worker left ``sending`` (``recover_orphaned``,
called by the desk's sweep with the live workers). A resend keeps the message id, which the
provider deduplicates by.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Engine

from cloud.faults import DATABASE, until_done
from cloud.health import Health
from cloud.lifecycle import outbox
from cloud.lifecycle.config import LifecycleConfig
from cloud.lifecycle.errors import DeliveryError
from cloud.lifecycle.model import OutboundMessage
from cloud.lifecycle.protocols import LiveWorkers, Renderer, Sender
from cloud.notify.redaction import describe_exception, redact

logger = logging.getLogger(__name__)

T = TypeVar("T")

CHANNEL_FAULT_HOLD_S = 300.0  # a channel's last failure counts this long without a success
IDLE_WAIT_S = 60.0  # longest sleep with nothing due (a kick wakes it sooner)
SEND_TIMEOUT_S = 30.0  # a send that hangs longer counts as a retryable failure


class OutboxSender:
    """Sends pending messages; woken by ``kick()`` when something is enqueued."""

    def __init__(
        self,
        db: Engine,
        config: LifecycleConfig,
        sender: Sender,
        renderer: Renderer,
        *,
        clock: Callable[[], float] = time.time,
        health: Health | None = None,
        claimer: str = "gridalarm",
    ) -> None:
        self._db = db
        self.claimer = claimer
        self._health = health
        self._channel_failed_at: dict[str, float] = {}
        self._cfg = config
        self._sender = sender
        self._renderer = renderer
        self._clock = clock
        self._kick = asyncio.Event()
        self.sent = 0
        self.failed_attempts = 0

    def kick(self) -> None:
        self._kick.set()

    def recover(self) -> int:
        """At start (blocking): our ``sending`` rows had an unknown outcome; send them again."""
        with self._db.begin() as conn:
            n = outbox.recover_sending(conn, self.claimer)
        if n:
            logger.warning("%d messages were being sent at a crash: resending, same ids", n)
        return n

    def recover_orphaned(self, live: LiveWorkers) -> int:
        """(Blocking) ``sending`` rows of workers that *live* does not list: they died with
        the outcome unknown; send them again. Judged in one transaction with the reset."""
        with self._db.begin() as conn:
            alive = {self.claimer, *live(conn)}
            n = outbox.recover_orphaned(conn, alive)
        if n:
            logger.warning("%d messages were being sent by a worker that died: resending, "
                           "same ids", n)  # fmt: skip
        return n

    async def run(self) -> None:
        while True:
            self._kick.clear()
            claimed = await self._db_call(self._claim, "claiming messages to send")
            if claimed:
                results = await asyncio.gather(*(self._send(m) for m in claimed))
                # sent but unrecorded rows stay `sending`: recorded late, or resent after a
                # crash under the same idempotency key; never forgotten
                await self._db_call(functools.partial(self._record, results), "recording results")
                continue
            self._forget_old_channel_faults()
            wake = await self._db_call(self._next_wake, "reading the next retry time")
            timeout = IDLE_WAIT_S if wake is None else max(0.0, wake - self._clock())
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(timeout, IDLE_WAIT_S)):
                    await self._kick.wait()

    async def _db_call(self, op: Callable[[], T], what: str) -> T:
        return await until_done(op, part=DATABASE, health=self._health, what=f"outbox: {what}")

    def _claim(self) -> list[OutboundMessage]:
        now = self._clock()
        cfg = self._cfg
        with self._db.begin() as conn:
            outbox.make_summaries(conn, self._renderer, now, cfg.grouping.window_s)
            return outbox.claim(conn, now, cfg.outbox.batch, self.claimer)

    def _next_wake(self) -> float | None:
        with self._db.connect() as conn:
            return outbox.next_wake(conn)

    async def _send(self, m: OutboundMessage) -> outbox.Result:
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                receipt = await self._sender.send(m)
        except DeliveryError as err:
            return outbox.Result(m, error=str(err), retryable=err.retryable)
        except TimeoutError:
            return outbox.Result(m, error=f"no answer in {SEND_TIMEOUT_S} s", retryable=True)
        except Exception as err:  # noqa: BLE001 - a broken Sender must not stop the outbox: retry, log it
            logger.error(  # no traceback: its message would print numbers and links verbatim
                "message %s (worker %s): sender raised %s",
                m.message_id, m.worker_id, describe_exception(err),
            )  # fmt: skip
            return outbox.Result(m, error=f"{type(err).__name__}: {err}", retryable=True)
        return outbox.Result(m, receipt=receipt)

    def _record(self, results: list[outbox.Result]) -> None:
        with self._db.begin() as conn:
            kept = outbox.record(conn, results, self._cfg.outbox, self._clock(), self.claimer)
        if kept < len(results):
            logger.warning(
                "%d sends not recorded: their claims were taken over (this worker "
                "was judged dead); the new claimer records them",
                len(results) - kept,
            )
        for r in results:
            if r.error is None:
                self.sent += 1
            else:
                self.failed_attempts += 1
                logger.info("message %s on %s failed: %s", r.message.message_id,
                            r.message.channel, redact(r.error))  # fmt: skip
        self._channel_health(results)

    def _channel_health(self, results: list[outbox.Result]) -> None:
        """A channel whose every send of this pass failed in a way that passes (provider down,
        5xx, no answer) is in fault; one that delivered is fine again. A message refused for
        itself (a bad number) says nothing of the channel. Retries and fallback go on."""
        if self._health is None:
            return
        by_channel: dict[str, list[outbox.Result]] = {}
        for r in results:
            by_channel.setdefault(r.message.channel, []).append(r)
        for channel, rs in by_channel.items():
            down = [r for r in rs if r.error is not None and r.retryable]
            part = f"channel.{channel}"
            if any(r.error is None for r in rs):
                self._health.mark(part, True)
                self._channel_failed_at.pop(part, None)
            elif down and len(down) == len(rs):
                why = redact(down[-1].error or "")
                self._health.mark(part, False, f"{len(down)} sends failed, retrying: {why}")
                self._channel_failed_at[part] = time.monotonic()

    def _forget_old_channel_faults(self) -> None:
        """No failure for a while and nothing left to try on it: no evidence of a fault."""
        now = time.monotonic()
        for part, at in list(self._channel_failed_at.items()):
            if now - at > CHANNEL_FAULT_HOLD_S and self._health is not None:
                self._health.mark(part, True)
                del self._channel_failed_at[part]
