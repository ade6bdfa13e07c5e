"""Errors of the simulated field. One root, subclasses a caller can act on."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SimError(Exception):
    """Root of every error the simulators raise on purpose."""


class UnknownDeviceError(SimError, LookupError):
    """No device with that id is simulated."""


class UnknownEventError(SimError, ValueError):
    """The device type does not accept that event."""


class UnknownFaultError(SimError, ValueError):
    """Not one of the fault kinds (silent, crc, exception, stuck, garbage, none)."""


class ExceptionCode(enum.IntEnum):
    """Modbus exception codes a simulated device answers with."""

    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_ADDRESS = 0x02
    ILLEGAL_VALUE = 0x03
    DEVICE_FAILURE = 0x04
    GATEWAY_NO_RESPONSE = 0x0B


class ModbusError(SimError):
    """A request the device refuses; ``code`` goes back in the exception response."""

    def __init__(self, code: ExceptionCode, message: str = "") -> None:
        self.code = code
        super().__init__(message or code.name.lower())


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a simulator config or scenario file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {field}{self.message}"


class ScenarioError(SimError, ValueError):
    """A config or scenario that cannot be used; ``issues`` names file, line and field."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))
