"""Field-bus drivers: the only code that imports pymodbus or pyserial.

``async with open_bus(cfg) as bus`` gives a Bus for a SerialBus (Modbus RTU or ASCII) or a
TcpBus; library errors come out as edge.errors (DeviceTimeout, FrameError,
ExceptionResponse, BusError).
"""

from __future__ import annotations

from edge.config import SerialBus, TcpBus
from edge.drivers.ascii import AsciiBus
from edge.drivers.bus import COUNTERS, Bus, ModbusBus, ProtocolMismatchError
from edge.drivers.rtu import RtuBus
from edge.drivers.tcp import ModbusTcpBus

__all__ = [
    "COUNTERS",
    "AsciiBus",
    "Bus",
    "ModbusBus",
    "ModbusTcpBus",
    "ProtocolMismatchError",
    "RtuBus",
    "open_bus",
]


def open_bus(cfg: SerialBus | TcpBus) -> Bus:
    """The driver for ``cfg``; use as ``async with open_bus(cfg) as bus``."""
    if isinstance(cfg, TcpBus):
        return ModbusTcpBus(cfg)
    if cfg.protocol == "ascii":
        return AsciiBus(cfg)
    return RtuBus(cfg)
