"""Serial line timing and the half-duplex pacing of one RS485 bus.

A pty delivers bytes instantly, so the bus emulates the wire: a request takes
``len * char_time`` to arrive, the device answers after a t3.5 gap, the reply takes
``len * char_time``, and the next request is not handled before another t3.5 of silence.
Deadlines are awaited with ``asyncio.sleep`` (the loop's ``call_at``), never polled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

FAST_BAUD = 19200
FAST_T35_S = 1.75e-3


@dataclass(frozen=True, slots=True)
class LineTiming:
    """Character time and inter-frame gap of a serial line."""

    baud: int = 9600
    parity: str = "N"
    stopbits: int = 1

    @property
    def bits_per_char(self) -> int:
        """Start + 8 data + parity + stop bits: 10 for 8N1, 11 with parity or 2 stop bits."""
        return 9 + (self.parity != "N") + self.stopbits

    @property
    def char_s(self) -> float:
        """Seconds per character on the wire."""
        return self.bits_per_char / self.baud

    @property
    def t35_s(self) -> float:
        """3.5 character times; fixed 1.75 ms above 19200 baud (Modbus over serial line spec)."""
        return FAST_T35_S if self.baud > FAST_BAUD else 3.5 * self.char_s

    def transfer_s(self, nbytes: int) -> float:
        """Time *nbytes* take on the wire."""
        return nbytes * self.char_s

    def transaction_s(self, request_len: int, reply_len: int) -> float:
        """From a request's first byte to the bus being free again after the reply."""
        return self.transfer_s(request_len + reply_len) + 2 * self.t35_s


Responder = Callable[[bytes], bytes | None]


class PacedLine:
    """Serialises requests on one bus and writes each reply when its last byte would arrive."""

    def __init__(self, timing: LineTiming, respond: Responder, write: Callable[[bytes], None]):
        self.timing = timing
        self._respond = respond
        self._write = write
        self._queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self._free_at = 0.0

    def submit(self, frame: bytes) -> None:
        """A complete request frame has just arrived."""
        self._queue.put_nowait((asyncio.get_running_loop().time(), frame))

    async def run(self) -> None:
        """Serve requests one at a time, forever."""
        while True:
            arrival, frame = await self._queue.get()
            await self._transact(arrival, frame)

    async def _transact(self, arrival: float, frame: bytes) -> None:
        timing = self.timing
        start = max(arrival, self._free_at)
        await _sleep_to(start)
        reply = self._respond(frame)
        heard = start + timing.transfer_s(len(frame)) + timing.t35_s
        if reply is None:
            self._free_at = heard
            return
        done = heard + timing.transfer_s(len(reply))
        await _sleep_to(done)
        self._write(reply)
        self._free_at = done + timing.t35_s


async def _sleep_to(deadline: float) -> None:
    delay = deadline - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)
