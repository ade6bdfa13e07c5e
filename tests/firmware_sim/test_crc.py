"""CRC-16/MODBUS against published vectors."""

from __future__ import annotations

import pytest

from firmware_sim.crc import crc16, crc_ok, with_crc


@pytest.mark.parametrize(
    ("data", "crc"),
    [
        (b"123456789", 0x4B37),  # the CRC catalogue's check value
        (bytes.fromhex("010300000001"), 0x0A84),  # read 1 register from unit 1: ... 84 0A
        (bytes.fromhex("1103006B0003"), 0x8776),  # Modbus spec example: ... 76 87
        (b"", 0xFFFF),
    ],
)
def test_crc_vectors(data: bytes, crc: int) -> None:
    assert crc16(data) == crc


def test_frame_carries_crc_low_byte_first() -> None:
    assert with_crc(bytes.fromhex("010300000001")) == bytes.fromhex("010300000001840A")


def test_crc_ok_rejects_a_flipped_bit() -> None:
    frame = with_crc(bytes.fromhex("1103006B0003"))
    assert crc_ok(frame)
    assert not crc_ok(frame[:-1] + bytes([frame[-1] ^ 1]))
    assert not crc_ok(b"\x01\x02")
