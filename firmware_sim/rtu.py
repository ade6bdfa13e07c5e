"""Modbus RTU over a pty: frame detection, CRC, several units, line pacing."""

from __future__ import annotations

import asyncio

from firmware_sim.bus import Transport
from firmware_sim.clock import Clock
from firmware_sim.crc import crc_ok, with_crc
from firmware_sim.line import LineTiming
from firmware_sim.pdu import answer, rtu_request_length
from firmware_sim.pty_bus import PtyBus

MIN_SILENCE_S = 0.005  # scheduler jitter floor for declaring a junk frame finished


class RtuBus(PtyBus):
    """An RS485 line speaking Modbus RTU; clients open :attr:`address` with pyserial."""

    transport = Transport.RTU

    def __init__(self, name: str, clock: Clock, timing: LineTiming | None = None) -> None:
        super().__init__(name, clock, timing)
        self._silence: asyncio.TimerHandle | None = None

    async def aclose(self) -> None:
        """Stop and close the pty."""
        if self._silence is not None:
            self._silence.cancel()
        await super().aclose()

    def _feed(self, data: bytes) -> None:
        self._buffer += data
        self._extract()
        if self._silence is not None:
            self._silence.cancel()
        if self._buffer:
            delay = max(self.timing.t35_s, MIN_SILENCE_S)
            self._silence = asyncio.get_running_loop().call_later(delay, self._on_silence)

    def _extract(self) -> None:
        while (size := rtu_request_length(bytes(self._buffer[:7]))) is not None:
            if len(self._buffer) < size:
                return
            frame = bytes(self._buffer[:size])
            del self._buffer[:size]
            self._accept(frame)

    def _on_silence(self) -> None:
        """The line went quiet on a frame we could not size: take it whole, or drop it."""
        frame = bytes(self._buffer)
        self._buffer.clear()
        self._accept(frame)

    def _accept(self, frame: bytes) -> None:
        if not crc_ok(frame):
            if len(frame) >= 4:
                self.stats.crc_errors_received += 1
            else:
                self.stats.junk_bytes += len(frame)
            return
        self.stats.requests += 1
        assert self._line is not None
        self._line.submit(frame)

    def _respond(self, frame: bytes) -> bytes | None:
        device = self.units.get(frame[0])
        reply = None if device is None else answer(device, frame[1:-2], self.clock.now())
        if reply is None:
            self.stats.no_reply += 1
            return None
        adu = with_crc(frame[:1] + reply.pdu)
        if reply.corrupt:
            adu = adu[:-1] + bytes([adu[-1] ^ 0xFF])
            self.stats.crc_errors_sent += 1
        self.stats.replies += 1
        self.stats.exceptions_sent += reply.is_exception
        return adu
