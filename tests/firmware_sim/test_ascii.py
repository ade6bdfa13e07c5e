"""The smoke detectors' ASCII line protocol: pure functions, then over a pty."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import serial

from firmware_sim import LineTiming, SimulatorSet
from firmware_sim.ascii_proto import AsciiRequest, checksum, parse_request, read_reply

Address = Callable[[str], str]
REPLY = re.compile(rb"!(\d{3}) S=([0-9A-F]{4}) OB=(\d+) T=(-?\d+) B=(\d+)\*([0-9A-F]{2})\r\n")


def test_parse_request() -> None:
    assert parse_request(b"@007RD\r\n") == AsciiRequest(7, "RD")
    assert parse_request(b"@247TS\r\n") == AsciiRequest(247, "TS")
    for bad in (b"@7RD\r\n", b"@007RD\n", b"@000RD\r\n", b"@248RD\r\n", b"@007XX\r\n"):
        assert parse_request(bad) is None


def test_reply_format_and_checksum() -> None:
    bank = [0x0001, 350, 0xFF9C, 3000, 300, 0, 0x5301, 0x0102]
    reply = read_reply(1, bank)
    assert reply.startswith(b"!001 S=0001 OB=350 T=-100 B=3000*")
    body, _, tail = reply.partition(b"*")
    assert int(tail[:2], 16) == checksum(body)
    assert read_reply(1, bank, corrupt=True) != reply


def ask(path: str, lines: list[bytes], timeout_s: float = 1.0) -> list[bytes]:
    with serial.Serial(path, 9600, timeout=timeout_s) as port:
        out = []
        for line in lines:
            port.write(line)
            out.append(port.readline())
        return out


async def test_read_over_the_line(sims: SimulatorSet, address: Address) -> None:
    [reply] = await asyncio.to_thread(ask, address("line-1"), [b"@007RD\r\n"])
    match = REPLY.fullmatch(reply)
    assert match is not None, reply
    assert int(match.group(6), 16) == checksum(reply.partition(b"*")[0])
    truth = sims.device("smk-0101").truth()
    assert int(match.group(5)) == truth["battery_mv"]


async def test_remote_test_sets_the_test_bit(sims: SimulatorSet, address: Address) -> None:
    ok, reading = await asyncio.to_thread(ask, address("line-1"), [b"@007TS\r\n", b"@007RD\r\n"])
    assert ok.startswith(b"!007 OK*")
    match = REPLY.fullmatch(reading)
    assert match is not None and int(match.group(2), 16) & 0x04
    assert sims.device("smk-0101").truth()["test"] is True


async def test_unknown_address_and_junk_are_ignored(sims: SimulatorSet, address: Address) -> None:
    replies = await asyncio.to_thread(
        ask, address("line-1"), [b"@008RD\r\n", b"hello\r\n", b"@007RD\r\n"], 0.3
    )
    assert replies[:2] == [b"", b""]
    assert REPLY.fullmatch(replies[2])
    stats = sims.stats("line-1")
    assert stats.no_reply == 1 and stats.junk_bytes == len(b"hello\r\n")


async def test_crc_fault_breaks_the_checksum(sims: SimulatorSet, address: Address) -> None:
    sims.device("smk-0101").set_fault("crc")
    [reply] = await asyncio.to_thread(ask, address("line-1"), [b"@007RD\r\n"])
    body, _, tail = reply.partition(b"*")
    assert int(tail[:2], 16) != checksum(body)


async def test_ascii_is_paced(sims: SimulatorSet, address: Address) -> None:
    timing = LineTiming(9600)

    def timed() -> tuple[float, int]:
        with serial.Serial(address("line-1"), 9600, timeout=1.0) as port:
            start = time.perf_counter()
            port.write(b"@007RD\r\n")
            line = port.readline()
            return time.perf_counter() - start, len(line)

    elapsed, size = await asyncio.to_thread(timed)
    assert elapsed >= 0.9 * (timing.transfer_s(8 + size) + timing.t35_s)
