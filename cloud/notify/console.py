"""The demo's channel: shows each message on a display callback (the terminal), or logs it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from cloud.notify.message import ChannelKind, Message, Receipt
from cloud.notify.redaction import escape, mask_phone, redact

logger = logging.getLogger(__name__)


class ConsoleChannel:
    """Emits `→ name (phone) [id]: text`, plus `data["alt_text"]` (the other language).

    A display callback (*emit*, e.g. the demo's terminal standing in for the phone) gets the
    message as sent. Without one the lines go to the log, where the number is masked and the
    link (a credential for its lifetime) is left out.
    """

    def __init__(
        self,
        emit: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._emit = emit
        self._clock = clock or (lambda: datetime.now(UTC))

    async def send(self, msg: Message) -> Receipt:
        """Emit one line per language; never fails."""
        alt = msg.data.get("alt_text")
        for text in (msg.text, *([str(alt)] if alt else [])):
            self._line(msg, text)
        return Receipt(provider_id=msg.id, channel=ChannelKind.CONSOLE, sent_at=self._clock())

    def _line(self, msg: Message, text: str) -> None:
        who = msg.recipient
        if self._emit is not None:
            self._emit(f"→ {who.name} ({who.phone or who.worker_id}) [{msg.id}]: {text}")
            return
        address = mask_phone(who.phone) if who.phone else escape(who.worker_id)
        logger.info("→ %s (%s) [%s]: %s", escape(who.name), address, msg.id, redact(text))
