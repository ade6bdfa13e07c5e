"""Modbus RTU over a pty, with pyserial as the client and hand-built frames."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable

import serial

from firmware_sim import LineTiming, SimulatorSet
from firmware_sim.crc import crc_ok, with_crc

Address = Callable[[str], str]
READ_8 = with_crc(struct.pack(">BBHH", 1, 3, 0, 8))
REPLY_8_LEN = 5 + 16


def exchange(path: str, frames: list[bytes], reply_len: int, timeout_s: float = 1.0) -> list[bytes]:
    """Send each frame and read up to *reply_len* bytes (fewer on timeout)."""
    with serial.Serial(path, 9600, timeout=timeout_s) as port:
        out = []
        for frame in frames:
            port.write(frame)
            out.append(port.read(reply_len))
        return out


async def test_read_eight_registers(sims: SimulatorSet, address: Address) -> None:
    [reply] = await asyncio.to_thread(exchange, address("bus-1"), [READ_8], REPLY_8_LEN)
    assert crc_ok(reply) and reply[:3] == b"\x01\x03\x10"
    words = struct.unpack(">8H", reply[3:-2])
    assert words[6:] == (0x5301, 0x0102)
    assert words[4] == 300  # alarm threshold default
    assert sims.stats("bus-1").replies == 1


async def test_bad_address_is_exception_02(sims: SimulatorSet, address: Address) -> None:
    request = with_crc(struct.pack(">BBHH", 2, 3, 4, 8))  # e-bike, 0x0004..0x000B
    [reply] = await asyncio.to_thread(exchange, address("bus-1"), [request], 5)
    assert reply == with_crc(b"\x02\x83\x02")


async def test_unknown_function_is_exception_01(sims: SimulatorSet, address: Address) -> None:
    request = with_crc(b"\x01\x2b\x0e\x01\x00")  # read device identification: not ours
    [reply] = await asyncio.to_thread(exchange, address("bus-1"), [request], 5)
    assert reply == with_crc(b"\x01\xab\x01")


async def test_crc_fault_corrupts_the_reply(sims: SimulatorSet, address: Address) -> None:
    sims.device("smk-0001").set_fault("crc")
    [reply] = await asyncio.to_thread(exchange, address("bus-1"), [READ_8], REPLY_8_LEN)
    assert len(reply) == REPLY_8_LEN and reply[:3] == b"\x01\x03\x10"
    assert not crc_ok(reply)
    assert sims.stats("bus-1").crc_errors_sent == 1


async def test_unknown_unit_and_bad_crc_get_silence(sims: SimulatorSet, address: Address) -> None:
    unknown = with_crc(struct.pack(">BBHH", 99, 3, 0, 8))
    damaged = READ_8[:-1] + bytes([READ_8[-1] ^ 0x55])
    replies = await asyncio.to_thread(
        exchange, address("bus-1"), [unknown, damaged, READ_8], REPLY_8_LEN, 0.3
    )
    assert replies[0] == b"" and replies[1] == b""
    assert crc_ok(replies[2])  # the bus still works afterwards
    stats = sims.stats("bus-1")
    assert stats.crc_errors_received == 1 and stats.no_reply == 1 and stats.replies == 1


async def test_write_then_read_back(sims: SimulatorSet, address: Address) -> None:
    write = with_crc(struct.pack(">BBHH", 2, 6, 5, 0))  # disable door hold
    [echo] = await asyncio.to_thread(exchange, address("bus-1"), [write], 8)
    assert echo == write
    assert sims.device("eb-0001").truth()["door_hold_enabled"] is False


async def test_pacing_makes_a_read_take_line_time(sims: SimulatorSet, address: Address) -> None:
    """Lower bound only: a loaded machine may be slower, never faster than the wire."""
    timing = LineTiming(9600)
    expected = timing.transfer_s(len(READ_8) + REPLY_8_LEN) + timing.t35_s
    rounds = 10

    def timed() -> float:
        with serial.Serial(address("bus-1"), 9600, timeout=1.0) as port:
            start = time.perf_counter()
            for _ in range(rounds):
                port.write(READ_8)
                assert len(port.read(REPLY_8_LEN)) == REPLY_8_LEN
            return (time.perf_counter() - start) / rounds

    per_read = await asyncio.to_thread(timed)
    assert per_read >= 0.9 * expected
    assert abs(expected - 0.03385) < 1e-4  # 29 chars + t3.5 at 9600 8N1


async def test_back_to_back_requests_respect_the_gap(sims: SimulatorSet, address: Address) -> None:
    """Two requests written at once: the second reply waits for the bus (t3.5 after reply 1)."""
    timing = LineTiming(9600)

    def burst() -> tuple[float, bytes]:
        with serial.Serial(address("bus-1"), 9600, timeout=1.0) as port:
            start = time.perf_counter()
            port.write(READ_8 + READ_8)
            data = port.read(2 * REPLY_8_LEN)
            return time.perf_counter() - start, data

    elapsed, data = await asyncio.to_thread(burst)
    assert crc_ok(data[:REPLY_8_LEN]) and crc_ok(data[REPLY_8_LEN:])
    assert elapsed >= 0.9 * (timing.transaction_s(8, REPLY_8_LEN) * 2 - timing.t35_s)


def test_line_timing() -> None:
    assert LineTiming(9600).bits_per_char == 10
    assert LineTiming(9600, "E").bits_per_char == 11
    assert LineTiming(9600, "N", 2).bits_per_char == 11
    assert LineTiming(9600).t35_s == 3.5 * 10 / 9600
    assert LineTiming(38400).t35_s == 1.75e-3
