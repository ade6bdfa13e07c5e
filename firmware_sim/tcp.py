"""Modbus TCP (MBAP header) on 127.0.0.1, several units behind one port, no pacing."""

from __future__ import annotations

import asyncio
import contextlib
import struct

from firmware_sim.bus import Bus, Transport
from firmware_sim.clock import Clock
from firmware_sim.errors import ExceptionCode
from firmware_sim.pdu import Answer, answer, exception_pdu

MBAP = struct.Struct(">HHHB")
MAX_LENGTH = 254


class TcpBus(Bus):
    """A Modbus TCP server, as a gateway module in front of several units would be.

    An unknown unit, or a unit in fault ``crc`` (the gateway saw a corrupt frame on its serial
    side), gets exception 0x0B "gateway target device failed to respond".
    """

    transport = Transport.TCP

    def __init__(self, name: str, clock: Clock, port: int = 0) -> None:
        super().__init__(name, clock)
        self._port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        """127.0.0.1:PORT."""
        return f"127.0.0.1:{self._port}"

    async def start(self) -> None:
        """Listen on 127.0.0.1 (port 0 picks a free one)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while await self._transact(reader, writer):
                    pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _transact(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        tid, protocol, length, unit = MBAP.unpack(await reader.readexactly(MBAP.size))
        if protocol != 0 or not 2 <= length <= MAX_LENGTH:
            self.stats.junk_bytes += MBAP.size
            return False  # not Modbus: hang up, as real servers do
        pdu = await reader.readexactly(length - 1)
        self.stats.requests += 1
        reply = self._answer(unit, pdu)
        if reply is None:
            self.stats.no_reply += 1
            return True
        writer.write(MBAP.pack(tid, 0, len(reply.pdu) + 1, unit) + reply.pdu)
        await writer.drain()
        self.stats.replies += 1
        self.stats.exceptions_sent += reply.is_exception
        return True

    def _answer(self, unit: int, pdu: bytes) -> Answer | None:
        device = self.units.get(unit)
        if device is None:
            return Answer(exception_pdu(pdu[0], ExceptionCode.GATEWAY_NO_RESPONSE))
        reply = answer(device, pdu, self.clock.now())
        if reply is not None and reply.corrupt:
            self.stats.crc_errors_sent += 1
            return Answer(exception_pdu(pdu[0], ExceptionCode.GATEWAY_NO_RESPONSE))
        return reply
