"""Ad-hoc bus settings for commands that talk to a bus without a config file."""

from __future__ import annotations

from typing import Literal

import pydantic

from edge.config import SerialBus, TcpBus
from edge.installer.errors import UsageError

Protocol = Literal["rtu", "tcp", "ascii"]
MODBUS_TCP_PORT = 502


def adhoc_bus(
    protocol: Protocol, port: str | None, host: str | None, baud: int
) -> SerialBus | TcpBus:
    """The bus given on the command line: ``--port`` is a serial path, or a TCP port (--host)."""
    try:
        if protocol == "tcp":
            if not host:
                raise UsageError("--protocol tcp needs --host (and optionally --port, default 502)")
            return TcpBus.model_validate(
                {"id": "cli", "kind": "tcp", "host": host, "port": _tcp_port(port)}
            )
        if host:
            raise UsageError("--host is for --protocol tcp; a serial line needs --port /dev/tty...")
        if not port:
            raise UsageError("give the serial port: --port /dev/ttyUSB0")
        serial = "ascii" if protocol == "ascii" else "modbus-rtu"
        return SerialBus.model_validate(
            {"id": "cli", "kind": "serial", "protocol": serial, "port": port, "baud": baud}
        )
    except pydantic.ValidationError as err:
        raise UsageError("; ".join(e["msg"] for e in err.errors())) from err


def _tcp_port(port: str | None) -> int:
    if port is None:
        return MODBUS_TCP_PORT
    try:
        return int(port)
    except ValueError:
        raise UsageError(f"--port {port!r}: with --protocol tcp the port is a number") from None


def parse_units(spec: str) -> list[int]:
    """Unit ids from '1-247', '5' or '1,3,10-12', each 1-247, in order, without repeats."""
    units: list[int] = []
    try:
        for part in spec.split(","):
            first, _, last = part.strip().partition("-")
            lo, hi = int(first), int(last or first)
            if not 1 <= lo <= hi <= 247:
                raise ValueError
            units += [u for u in range(lo, hi + 1) if u not in units]
    except ValueError:
        raise UsageError(
            f"--units {spec!r}: give ids 1-247 as '1-247', '5' or '1,3,10-12'"
        ) from None
    return units
