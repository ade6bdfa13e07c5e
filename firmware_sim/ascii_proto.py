"""The smoke detectors' ASCII line protocol (REGISTERS.md): parse requests, format replies."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from firmware_sim.registers import s16

REQUEST = re.compile(rb"@(\d{3})(RD|TS)\r\n")
MAX_LINE = 64


@dataclass(frozen=True, slots=True)
class AsciiRequest:
    """``@AAARD`` (read) or ``@AAATS`` (remote test)."""

    address: int
    command: str


def parse_request(line: bytes) -> AsciiRequest | None:
    """The request in *line* (CR LF included), or None when malformed."""
    match = REQUEST.fullmatch(line)
    if match is None:
        return None
    address = int(match.group(1))
    return AsciiRequest(address, match.group(2).decode()) if 1 <= address <= 247 else None


def checksum(body: bytes) -> int:
    """XOR of every byte of *body* (from ``!`` up to, not including, ``*``)."""
    out = 0
    for byte in body:
        out ^= byte
    return out


def frame(body: str, *, corrupt: bool = False) -> bytes:
    """``body*CC\\r\\n``; *corrupt* sends a wrong checksum (fault ``crc``)."""
    raw = body.encode("ascii")
    check = checksum(raw) ^ (0x5A if corrupt else 0)
    return raw + f"*{check:02X}\r\n".encode("ascii")


def read_reply(address: int, bank: Sequence[int], *, corrupt: bool = False) -> bytes:
    """``!AAA S=hhhh OB=n T=n B=n*CC`` from the smoke registers 0-3."""
    body = f"!{address:03d} S={bank[0]:04X} OB={bank[1]} T={s16(bank[2])} B={bank[3]}"
    return frame(body, corrupt=corrupt)


def ok_reply(address: int, *, corrupt: bool = False) -> bytes:
    """``!AAA OK*CC``."""
    return frame(f"!{address:03d} OK", corrupt=corrupt)
