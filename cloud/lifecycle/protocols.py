"""What the lifecycle needs from others; the worker wires the real implementations in.

- ``Dispatcher``: ``cloud.dispatch.ranking.rank_candidates`` behind a small adapter.
- ``Sender``: ``cloud.notify``'s ``Channel.send`` behind an adapter that picks the channel by
  ``OutboundMessage.channel``, passes ``message_id`` as the provider's idempotency key and
  translates ``ChannelError(retryable)`` into ``DeliveryError(retryable)``.
- ``Renderer``: the notify templates (zh-CN / en, signed link); ``PlainRenderer`` until then.
- ``CloseRuleAlarm``: ``rules.Engine.close`` (called on the event loop after a person resolves).
- ``AlarmFeed``: ``cloud.brigade.feed.BrigadeFeed`` (the brigades' durable message queue).
- ``LiveWorkers``: with several cloud workers on one database, which are alive, judged in
  the given transaction (``cloud.cluster.members.live_workers`` with its ``within_s``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from sqlalchemy.engine import Connection

from cloud.lifecycle.model import (
    AlarmView,
    FeedStep,
    Notice,
    OutboundMessage,
    Rendered,
    StepRequest,
    Target,
)

CloseRuleAlarm = Callable[[str], object]
LiveWorkers = Callable[[Connection], Iterable[str]]


class Dispatcher(Protocol):
    def targets(self, alarm: AlarmView, step: StepRequest) -> Sequence[Target]:
        """Who this step reaches (fast, in memory: it runs inside the step's transaction)."""
        ...


class Sender(Protocol):
    async def send(self, message: OutboundMessage) -> str | None:
        """Deliver one message on ``message.channel``; a provider receipt id or None.

        Raises DeliveryError(retryable=...) on failure. The same ``message_id`` may come again
        after a crash with unknown outcome: the provider must deliver it at most once.
        """
        ...


class Renderer(Protocol):
    def alert(self, alarm: AlarmView, target: Target) -> Rendered:
        """One alarm's message for one person (short enough for one SMS)."""
        ...

    def summary(self, worker_id: str, alarms: Sequence[AlarmView], locale: str) -> Rendered:
        """One message that carries several alarms held back by grouping."""
        ...

    def notice(self, alarm: AlarmView, target: Target, notice: Notice) -> Rendered:
        """A notice about *alarm* for one person (one SMS), with the alarm page's link."""
        ...


class AlarmFeed(Protocol):
    def record(self, conn: Connection, alarm_id: int, step: FeedStep, now: float) -> None:
        """Inside the lifecycle's transaction: queue what outside systems must be told of
        *step* (it commits, or rolls back, with the step). Called once per alarm and step
        as the lifecycle sees it; a repeat must change nothing."""
        ...
