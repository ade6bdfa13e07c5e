"""The demo's channel: writes each message to a callback (the terminal, a log)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from cloud.notify.message import ChannelKind, Message, Receipt

logger = logging.getLogger(__name__)


def _log_line(line: str) -> None:
    logger.info("%s", line)


class ConsoleChannel:
    """Emits `→ name (phone): text`, plus `data["alt_text"]` (the other language) if present."""

    def __init__(
        self,
        emit: Callable[[str], None] = _log_line,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._emit = emit
        self._clock = clock or (lambda: datetime.now(UTC))

    async def send(self, msg: Message) -> Receipt:
        """Emit one line per language; never fails."""
        who = msg.recipient
        address = who.phone or who.worker_id
        self._emit(f"→ {who.name} ({address}) [{msg.id}]: {msg.text}")
        alt = msg.data.get("alt_text")
        if alt:
            self._emit(f"→ {who.name} ({address}) [{msg.id}]: {alt}")
        return Receipt(provider_id=msg.id, channel=ChannelKind.CONSOLE, sent_at=self._clock())
