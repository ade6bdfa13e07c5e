"""CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), sent low byte first."""

from __future__ import annotations


def _table() -> tuple[int, ...]:
    out = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        out.append(crc)
    return tuple(out)


_TABLE = _table()


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS of *data*."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


def with_crc(frame: bytes) -> bytes:
    """*frame* followed by its CRC, low byte first, as it goes on the line."""
    return frame + crc16(frame).to_bytes(2, "little")


def crc_ok(adu: bytes) -> bool:
    """True when the last two bytes of *adu* are the CRC of the rest."""
    return len(adu) >= 4 and crc16(adu[:-2]).to_bytes(2, "little") == adu[-2:]
