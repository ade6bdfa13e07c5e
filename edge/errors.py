"""Errors of the edge side. Library errors are translated into these where they enter."""


class EdgeError(Exception):
    """Root of every error the edge raises on purpose."""


class DeviceError(EdgeError):
    """A device did not answer correctly. ``kind`` names the failure for counters."""

    kind = "device_error"


class DeviceTimeout(DeviceError):
    kind = "timeout"


class FrameError(DeviceError):
    """A reply arrived but was corrupt (bad CRC, bad checksum, wrong length, wrong unit)."""

    kind = "frame_error"


class ExceptionResponse(DeviceError):
    """The device answered with a Modbus exception code."""

    kind = "exception"

    def __init__(self, code: int, message: str = "") -> None:
        self.code = code
        super().__init__(message or f"Modbus exception {code}")


class BusError(EdgeError):
    """The bus itself is unusable (port missing, connection refused)."""

    kind = "bus_error"


class UplinkError(EdgeError):
    """The MQTT uplink failed in a way the caller must handle."""
