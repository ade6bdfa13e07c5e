"""The device end of a pseudo-terminal: clients open the slave path with pyserial."""

from __future__ import annotations

import asyncio
import logging
import os
import tty
from collections.abc import Callable

logger = logging.getLogger(__name__)

READ_SIZE = 4096


class PtyPort:
    """A raw pty whose master side the simulator reads and writes without blocking."""

    def __init__(self, name: str, on_bytes: Callable[[bytes], None]) -> None:
        self.name = name
        self._on_bytes = on_bytes
        self._master = -1
        self._slave = -1
        self.path = ""
        self.dropped_bytes = 0

    def open(self) -> str:
        """Create the pty and start reading; returns the slave path (/dev/pts/N)."""
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)  # the line discipline lives on the slave side
        os.set_blocking(self._master, False)
        # Keeping the slave open means a client closing its end never hangs up our master.
        self.path = os.ttyname(self._slave)
        asyncio.get_running_loop().add_reader(self._master, self._readable)
        return self.path

    def write(self, data: bytes) -> None:
        """Put *data* on the line now; a client that stopped reading loses it."""
        try:
            os.write(self._master, data)
        except BlockingIOError:
            self.dropped_bytes += len(data)
            logger.warning("%s: pty buffer full, reply dropped", self.name)

    def close(self) -> None:
        """Stop reading and close both ends."""
        if self._master < 0:
            return
        asyncio.get_running_loop().remove_reader(self._master)
        os.close(self._master)
        os.close(self._slave)
        self._master = self._slave = -1

    def _readable(self) -> None:
        try:
            data = os.read(self._master, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            logger.exception("%s: pty read failed", self.name)
            return
        if data:
            self._on_bytes(data)
