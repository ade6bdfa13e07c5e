"""An RS485 line behind a pyserial port, read through the event loop (no thread per read)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import serial

from edge.config import SerialBus
from edge.errors import BusError

logger = logging.getLogger(__name__)
MAX_BUFFER = 4096


class SerialLine:
    """Non-blocking pyserial port: bytes land in a buffer from a loop reader callback."""

    def __init__(self, cfg: SerialBus) -> None:
        self.cfg = cfg
        bits = 1 + cfg.bytesize + (0 if cfg.parity == "N" else 1) + cfg.stopbits
        self.char_time_s = bits / cfg.baud
        # Modbus RTU inter-frame silence: 3.5 characters, fixed at 1.75 ms above 19200 baud.
        self.t35_s = 3.5 * self.char_time_s if cfg.baud <= 19200 else 0.00175
        self.last_rx = 0.0
        self._port: serial.Serial | None = None
        self._buffer = bytearray()
        self._waiter: tuple[Callable[[bytes], bool], asyncio.Future[None]] | None = None
        self._failed: BusError | None = None

    async def open(self) -> None:
        """Open the port; BusError if it cannot be opened."""
        cfg = self.cfg
        try:
            port = await asyncio.to_thread(
                serial.Serial,
                cfg.port,
                baudrate=cfg.baud,
                bytesize=cfg.bytesize,
                parity=str(cfg.parity),
                stopbits=cfg.stopbits,
                timeout=0,
                exclusive=True,
            )
        except (serial.SerialException, ValueError, OSError) as err:
            raise BusError(f"bus {cfg.id}: cannot open {cfg.port}: {err}") from err
        self._port = port
        asyncio.get_running_loop().add_reader(port.fileno(), self._on_readable)

    async def close(self) -> None:
        """Close the port."""
        if self._port is None:
            return
        port, self._port = self._port, None
        asyncio.get_running_loop().remove_reader(port.fileno())
        port.close()
        self._wake(BusError(f"bus {self.cfg.id}: port closed"))

    def discard_input(self) -> None:
        """Drop whatever arrived outside a transaction (late replies, line noise)."""
        self._buffer.clear()

    def write(self, data: bytes) -> None:
        """Send a frame. A request is at most 256 bytes into an idle tty buffer: no blocking."""
        port = self._live()
        try:
            port.write(data)
        except serial.SerialException as err:
            raise BusError(f"bus {self.cfg.id}: write failed: {err}") from err

    async def read_until(self, complete: Callable[[bytes], bool], timeout_s: float) -> bytes:
        """Bytes received until ``complete(buffer)`` or the timeout, whichever comes first."""
        self._live()
        if not complete(bytes(self._buffer)):
            done = asyncio.get_running_loop().create_future()
            self._waiter = (complete, done)
            try:
                async with asyncio.timeout(timeout_s):
                    await done
            except TimeoutError:
                pass
            finally:
                self._waiter = None
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def _live(self) -> serial.Serial:
        if self._failed is not None:
            raise self._failed
        if self._port is None:
            raise BusError(f"bus {self.cfg.id}: port not open")
        return self._port

    def _on_readable(self) -> None:
        assert self._port is not None
        try:
            data = self._port.read(self._port.in_waiting or 1)
        except (serial.SerialException, OSError) as err:
            # The far end is gone (USB adapter unplugged, pty closed): stop reading.
            logger.error("bus %s: serial read failed: %s", self.cfg.id, err)
            asyncio.get_running_loop().remove_reader(self._port.fileno())
            self._failed = BusError(f"bus {self.cfg.id}: serial port failed: {err}")
            self._wake(self._failed)
            return
        if not data:
            return
        self.last_rx = asyncio.get_running_loop().time()
        if len(self._buffer) + len(data) > MAX_BUFFER:
            self._buffer.clear()
        self._buffer += data
        if self._waiter is not None and self._waiter[0](bytes(self._buffer)):
            self._wake(None)

    def _wake(self, error: BusError | None) -> None:
        if self._waiter is None or self._waiter[1].done():
            return
        if error is None:
            self._waiter[1].set_result(None)
        else:
            self._waiter[1].set_exception(error)
