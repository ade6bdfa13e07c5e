"""The ASCII line protocol over a pty, paced at the baud rate like RTU."""

from __future__ import annotations

from firmware_sim.ascii_proto import MAX_LINE, ok_reply, parse_request, read_reply
from firmware_sim.bus import Transport
from firmware_sim.device import Fault
from firmware_sim.pty_bus import PtyBus


class AsciiBus(PtyBus):
    """An RS485 line of smoke detectors speaking ``@AAARD``.

    The protocol has no error reply, so faults ``silent`` and ``exception`` both mean no answer;
    ``crc`` sends a wrong checksum. The turnaround before a reply is t3.5, as on RTU.
    """

    transport = Transport.ASCII

    def _feed(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            self._accept(line)
        if len(self._buffer) > MAX_LINE:
            self.stats.junk_bytes += len(self._buffer)
            self._buffer.clear()

    def _accept(self, line: bytes) -> None:
        if parse_request(line) is None:
            self.stats.junk_bytes += len(line)
            return
        self.stats.requests += 1
        assert self._line is not None
        self._line.submit(line)

    def _respond(self, line: bytes) -> bytes | None:
        request = parse_request(line)
        assert request is not None
        device = self.units.get(request.address)
        if device is None or device.fault in (Fault.SILENT, Fault.EXCEPTION):
            self.stats.no_reply += 1
            return None
        now = self.clock.now()
        corrupt = device.fault is Fault.CRC
        if request.command == "TS":
            device.trigger("test", now)
            reply = ok_reply(request.address, corrupt=corrupt)
        else:
            reply = read_reply(request.address, device.registers(now), corrupt=corrupt)
        self.stats.replies += 1
        self.stats.crc_errors_sent += corrupt
        return reply
