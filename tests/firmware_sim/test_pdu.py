"""PDU handling shared by RTU and TCP: function codes, exceptions and faults."""

from __future__ import annotations

import struct

import pytest

from firmware_sim.pdu import Answer, answer, rtu_request_length
from firmware_sim.smoke import SmokeDetector

T0 = 1_700_000_000.0


def read(address: int, count: int) -> bytes:
    return struct.pack(">BHH", 3, address, count)


@pytest.fixture
def smoke() -> SmokeDetector:
    return SmokeDetector(seed=1, now=T0)


def test_read_all_eight_registers(smoke: SmokeDetector) -> None:
    reply = answer(smoke, read(0, 8), T0)
    assert reply is not None and not reply.corrupt
    assert reply.pdu[:2] == b"\x03\x10"
    words = struct.unpack(">8H", reply.pdu[2:])
    assert words == tuple(smoke.registers(T0))
    assert words[6:] == (0x5301, 0x0102)


@pytest.mark.parametrize(
    ("pdu", "code"),
    [
        (read(6, 3), 0x02),  # past the last register
        (read(100, 1), 0x02),
        (read(0, 0), 0x03),
        (read(0, 126), 0x03),
        (b"\x03\x00\x00", 0x03),  # truncated
        (struct.pack(">BHH", 4, 0, 1), 0x01),  # FC 04 is not implemented
        (struct.pack(">BHH", 6, 0, 1), 0x02),  # status is read-only
        (struct.pack(">BHH", 6, 5, 2), 0x03),  # sounder takes 0 or 1
        (struct.pack(">BHH", 6, 4, 900), 0x03),  # threshold outside 0.5-4 %/m
        (struct.pack(">BHHBHH", 16, 4, 2, 3, 300, 1), 0x03),  # byte count mismatch
        (struct.pack(">BHHBHH", 16, 5, 2, 4, 1, 1), 0x02),  # second register read-only
    ],
)
def test_exceptions(smoke: SmokeDetector, pdu: bytes, code: int) -> None:
    reply = answer(smoke, pdu, T0)
    assert reply is not None
    assert reply.pdu == bytes([pdu[0] | 0x80, code])
    assert reply.is_exception


def test_write_single_echoes_and_sticks(smoke: SmokeDetector) -> None:
    pdu = struct.pack(">BHH", 6, 4, 250)
    reply = answer(smoke, pdu, T0)
    assert reply is not None and reply.pdu == pdu
    assert smoke.truth(T0)["alarm_threshold_pct_per_m"] == 2.5


def test_write_multiple_is_all_or_nothing(smoke: SmokeDetector) -> None:
    ok = answer(smoke, struct.pack(">BHHBHH", 16, 4, 2, 4, 200, 1), T0)
    assert ok is not None and ok.pdu == struct.pack(">BHH", 16, 4, 2)
    assert smoke.registers(T0)[4:6] == [200, 1]
    answer(smoke, struct.pack(">BHHBHH", 16, 4, 2, 4, 350, 7), T0)  # 7 is refused
    assert smoke.registers(T0)[4] == 200


def test_faults(smoke: SmokeDetector) -> None:
    smoke.set_fault("silent")
    assert answer(smoke, read(0, 8), T0) is None
    smoke.set_fault("exception")
    assert answer(smoke, read(0, 8), T0) == Answer(b"\x83\x04")
    smoke.set_fault("crc")
    corrupt = answer(smoke, read(0, 1), T0)
    assert corrupt is not None and corrupt.corrupt
    smoke.set_fault("garbage")
    assert smoke.read(0, 8, T0)[:6] == [0xFFFF] * 6
    assert smoke.read(6, 2, T0) == [0x5301, 0x0102]
    smoke.set_fault("none")
    assert smoke.read(0, 1, T0) == [0]


def test_stuck_freezes_the_wire_not_the_truth(smoke: SmokeDetector) -> None:
    before = smoke.registers(T0)
    smoke.set_fault("stuck")
    smoke.trigger("smoke", T0 + 1)
    assert smoke.registers(T0 + 60) == before
    assert smoke.truth(T0 + 60)["alarm"] is True


@pytest.mark.parametrize(
    ("head", "size"),
    [
        (b"\x01", None),
        (b"\x01\x03", 8),
        (b"\x01\x06", 8),
        (b"\x01\x10\x00\x04\x00", None),
        (b"\x01\x10\x00\x04\x00\x02\x04", 13),
        (b"\x01\x2b", None),
    ],
)
def test_rtu_request_length(head: bytes, size: int | None) -> None:
    assert rtu_request_length(head) == size
