"""What the serial buses (RTU, ASCII) share: a pty, a paced line, a receive buffer."""

from __future__ import annotations

import abc

from firmware_sim.bus import Bus
from firmware_sim.clock import Clock
from firmware_sim.line import LineTiming, PacedLine
from firmware_sim.pty_port import PtyPort


class PtyBus(Bus):
    """A simulated RS485 line behind a pseudo-terminal, replies paced at the baud rate."""

    def __init__(self, name: str, clock: Clock, timing: LineTiming | None = None) -> None:
        super().__init__(name, clock)
        self.timing = timing or LineTiming()
        self._port = PtyPort(name, self._feed)
        self._line: PacedLine | None = None
        self._buffer = bytearray()

    @property
    def address(self) -> str:
        """The pty slave path."""
        return self._port.path

    async def start(self) -> None:
        """Open the pty and serve."""
        self._line = PacedLine(self.timing, self._respond, self._port.write)
        self._port.open()
        self._spawn(self._line.run())

    async def aclose(self) -> None:
        """Stop and close the pty."""
        await super().aclose()
        self._port.close()

    @abc.abstractmethod
    def _feed(self, data: bytes) -> None:
        """Bytes arrived from the master."""

    @abc.abstractmethod
    def _respond(self, request: bytes) -> bytes | None:
        """The reply to one complete request, or None for silence."""
