"""Modbus PDU handling shared by RTU and TCP: FC 03/06/16, exceptions 01-04, and faults."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from firmware_sim.device import Device, Fault
from firmware_sim.errors import ExceptionCode, ModbusError

MAX_READ = 125
MAX_WRITE = 123


class FunctionCode(enum.IntEnum):
    """The function codes the simulated devices implement."""

    READ_HOLDING = 0x03
    WRITE_SINGLE = 0x06
    WRITE_MULTIPLE = 0x10


@dataclass(frozen=True, slots=True)
class Answer:
    """A response PDU; ``corrupt`` asks the framing to damage its check (fault ``crc``)."""

    pdu: bytes
    corrupt: bool = False

    @property
    def is_exception(self) -> bool:
        """True for an exception response."""
        return bool(self.pdu and self.pdu[0] & 0x80)


def exception_pdu(function: int, code: ExceptionCode) -> bytes:
    """``function | 0x80`` followed by the exception code."""
    return bytes([(function | 0x80) & 0xFF, code])


def answer(device: Device, pdu: bytes, now: float) -> Answer | None:
    """The device's answer to *pdu* at *now*, or None when it stays silent."""
    if device.fault is Fault.SILENT or not pdu:
        return None
    if device.fault is Fault.EXCEPTION:
        return Answer(exception_pdu(pdu[0], ExceptionCode.DEVICE_FAILURE))
    try:
        body = _dispatch(device, pdu, now)
    except ModbusError as err:
        body = exception_pdu(pdu[0], err.code)
    return Answer(body, corrupt=device.fault is Fault.CRC)


def _dispatch(device: Device, pdu: bytes, now: float) -> bytes:
    function = pdu[0]
    if function == FunctionCode.READ_HOLDING:
        return _read(device, pdu, now)
    if function == FunctionCode.WRITE_SINGLE:
        return _write_single(device, pdu, now)
    if function == FunctionCode.WRITE_MULTIPLE:
        return _write_multiple(device, pdu, now)
    raise ModbusError(ExceptionCode.ILLEGAL_FUNCTION)


def _read(device: Device, pdu: bytes, now: float) -> bytes:
    if len(pdu) != 5:
        raise ModbusError(ExceptionCode.ILLEGAL_VALUE)
    address, count = struct.unpack(">HH", pdu[1:5])
    if not 1 <= count <= MAX_READ:
        raise ModbusError(ExceptionCode.ILLEGAL_VALUE)
    words = device.read(address, count, now)
    return struct.pack(f">BB{count}H", pdu[0], 2 * count, *words)


def _write_single(device: Device, pdu: bytes, now: float) -> bytes:
    if len(pdu) != 5:
        raise ModbusError(ExceptionCode.ILLEGAL_VALUE)
    address, value = struct.unpack(">HH", pdu[1:5])
    device.write(address, [value], now)
    return bytes(pdu)


def _write_multiple(device: Device, pdu: bytes, now: float) -> bytes:
    if len(pdu) < 6:
        raise ModbusError(ExceptionCode.ILLEGAL_VALUE)
    address, count, nbytes = struct.unpack(">HHB", pdu[1:6])
    if not 1 <= count <= MAX_WRITE or nbytes != 2 * count or len(pdu) != 6 + nbytes:
        raise ModbusError(ExceptionCode.ILLEGAL_VALUE)
    values = list(struct.unpack(f">{count}H", pdu[6:]))
    device.write(address, values, now)
    return bytes(pdu[:5])


def rtu_request_length(buffer: bytes) -> int | None:
    """Length of the RTU request frame starting *buffer*, if its function code tells it.

    None while too few bytes have arrived to know, or for a function code we cannot size
    (the bus then falls back on the silence timeout).
    """
    if len(buffer) < 2:
        return None
    if buffer[1] in (FunctionCode.READ_HOLDING, FunctionCode.WRITE_SINGLE):
        return 8
    if buffer[1] == FunctionCode.WRITE_MULTIPLE:
        return 9 + buffer[6] if len(buffer) >= 7 else None
    return None
