"""Modbus TCP with a raw socket: MBAP framing, several units, gateway exceptions."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

from firmware_sim import SimulatorSet

Address = Callable[[str], str]


async def transact(addr: str, unit: int, pdu: bytes, tid: int = 7) -> bytes | None:
    """One request; the reply PDU, or None if nothing came back within 0.3 s."""
    host, _, port = addr.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)
        await writer.drain()
        try:
            header = await asyncio.wait_for(reader.readexactly(7), 0.3)
        except TimeoutError:
            return None
        rtid, proto, length, runit = struct.unpack(">HHHB", header)
        assert (rtid, proto, runit) == (tid, 0, unit)
        return await reader.readexactly(length - 1)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_read_flood_gauge(sims: SimulatorSet, address: Address) -> None:
    pdu = await transact(address("gw-1"), 4, struct.pack(">BHH", 3, 0, 8))
    assert pdu is not None and pdu[:2] == b"\x03\x10"
    words = struct.unpack(">8H", pdu[2:])
    assert words[4:] == (1, 300, 0x464C, 0x0110)


async def test_units_share_the_port(sims: SimulatorSet, address: Address) -> None:
    pdu = await transact(address("gw-1"), 3, struct.pack(">BHH", 3, 6, 1))
    assert pdu == b"\x03\x02\x4d\x48"


async def test_unknown_unit_gets_gateway_exception(sims: SimulatorSet, address: Address) -> None:
    assert await transact(address("gw-1"), 99, struct.pack(">BHH", 3, 0, 1)) == b"\x83\x0b"


async def test_faults_over_tcp(sims: SimulatorSet, address: Address) -> None:
    read = struct.pack(">BHH", 3, 0, 1)
    sims.device("fl-0001").set_fault("exception")
    assert await transact(address("gw-1"), 4, read) == b"\x83\x04"
    sims.device("fl-0001").set_fault("silent")
    assert await transact(address("gw-1"), 4, read) is None
    sims.device("fl-0001").set_fault("none")
    assert await transact(address("gw-1"), 4, read) is not None
    assert sims.stats("gw-1").no_reply == 1


async def test_write_multiple_over_tcp(sims: SimulatorSet, address: Address) -> None:
    pdu = struct.pack(">BHHBH", 16, 5, 1, 2, 150)
    assert await transact(address("gw-1"), 4, pdu) == struct.pack(">BHH", 16, 5, 1)
    assert sims.device("fl-0001").truth()["level_alarm_point_mm"] == 150
