"""Modbus TCP through pymodbus's async client - the one module that speaks pymodbus.

pymodbus's keyword for the unit id changed twice (unit= → slave= → device_id=); it appears
only in ``_unit_kw`` below. Our own retry loop counts every attempt, so pymodbus's retries
are 0; the per-call timeout is ours (asyncio.timeout), pymodbus's client timeout only bounds
connecting.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from edge.config import TcpBus
from edge.drivers.bus import ModbusBus
from edge.errors import BusError, DeviceTimeout, ExceptionResponse, FrameError

logger = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 3.0


def _unit_kw(unit: int) -> dict[str, Any]:
    return {"device_id": unit}


def _client(cfg: TcpBus) -> AsyncModbusTcpClient:
    client = AsyncModbusTcpClient(
        cfg.host,
        port=cfg.port,
        name=cfg.id,
        timeout=CONNECT_TIMEOUT_S,
        retries=0,
        reconnect_delay=0,  # we reconnect on the next transaction, not in the background
    )
    # pymodbus drops the connection after a few unanswered requests; a silent unit behind a
    # TCP gateway must not cut off the others. Our per-call timeout fires first anyway.
    client.set_max_no_responses(1 << 30)
    return client


class ModbusTcpBus(ModbusBus):
    """Modbus TCP to one server (a device or a TCP-to-RTU gateway)."""

    def __init__(self, cfg: TcpBus) -> None:
        super().__init__(cfg.id)
        self._cfg = cfg
        self._client = _client(cfg)

    async def open(self) -> None:
        """Connect; BusError if the server cannot be reached."""
        await self._connect()

    async def close(self) -> None:
        """Disconnect."""
        self._client.close()

    async def _connect(self) -> None:
        if self._client.connected:
            return
        if not await self._client.connect():
            raise BusError(f"bus {self.id}: cannot connect to {self._cfg.host}:{self._cfg.port}")
        logger.debug("bus %s: connected to %s:%d", self.id, self._cfg.host, self._cfg.port)

    async def _call(self, unit: int, timeout_s: float, request: Any) -> Any:
        await self._connect()
        try:
            async with asyncio.timeout(timeout_s):
                response = await request(**_unit_kw(unit))
        except TimeoutError as err:
            raise DeviceTimeout(f"unit {unit}: no reply in {timeout_s} s") from err
        except ConnectionException as err:
            raise BusError(f"bus {self.id}: connection lost: {err}") from err
        except ModbusIOException as err:
            if "No response" in str(err):
                raise DeviceTimeout(f"unit {unit}: {err}") from err
            raise FrameError(f"unit {unit}: {err}") from err
        except ModbusException as err:
            raise FrameError(f"unit {unit}: {err}") from err
        if response.isError():
            code = getattr(response, "exception_code", 0)
            raise ExceptionResponse(code, f"unit {unit}: Modbus exception {code}")
        return response

    async def _read_holding(
        self, unit: int, address: int, count: int, timeout_s: float
    ) -> list[int]:
        def request(**kw: Any) -> Any:
            return self._client.read_holding_registers(address, count=count, **kw)

        response = await self._call(unit, timeout_s, request)
        registers = list(response.registers)
        if len(registers) != count:
            raise FrameError(f"unit {unit}: {len(registers)} registers for {count}")
        return registers

    async def _write_single(self, unit: int, address: int, value: int, timeout_s: float) -> None:
        def request(**kw: Any) -> Any:
            return self._client.write_register(address, value, **kw)

        await self._call(unit, timeout_s, request)
