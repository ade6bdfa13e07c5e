"""The ASCII line protocol of cheap RS485 smoke detectors (firmware_sim/REGISTERS.md).

request ``@AAARD\\r\\n``; reply ``!AAA S=hhhh OB=n T=n B=n*CC\\r\\n`` where CC is the XOR of
every byte from ``!`` up to ``*``.
"""

from __future__ import annotations

import re

from edge.config import SerialBus
from edge.decode import Decoded
from edge.drivers.bus import Bus, ProtocolMismatchError
from edge.drivers.serialline import SerialLine
from edge.errors import DeviceTimeout, FrameError
from edge.profile import Profile

_REPLY = re.compile(rb"!(\d{3}) ([^*]*)\*([0-9A-Fa-f]{2})\r?\n")
_FIELD = re.compile(r"([A-Z]+)=(-?[0-9A-Fa-f]+)")
HEX_FIELDS = frozenset({"S"})


def checksum(body: bytes) -> int:
    """XOR of every byte."""
    x = 0
    for b in body:
        x ^= b
    return x


def parse_reply(line: bytes, unit: int) -> str:
    """The payload between the address and ``*`` of a checked reply line."""
    if not line:
        raise DeviceTimeout(f"unit {unit}: no reply")
    start = line.find(b"!")
    match = _REPLY.fullmatch(line[start:]) if start >= 0 else None
    if match is None:
        raise FrameError(f"unit {unit}: malformed reply {line!r}")
    body = line[start : match.start(3) - 1]
    if checksum(body) != int(match[3], 16):
        raise FrameError(f"unit {unit}: bad checksum in {line!r}")
    if int(match[1]) != unit:
        raise FrameError(f"unit {unit}: reply from address {int(match[1])}")
    return match[2].decode("ascii", "replace")


def parse_fields(payload: str, unit: int) -> dict[str, int]:
    """``S=0001 OB=12 T=-100`` → {"S": 1, "OB": 12, "T": -100} (S in hex)."""
    fields: dict[str, int] = {}
    for token in payload.split():
        m = _FIELD.fullmatch(token)
        if m is None:
            raise FrameError(f"unit {unit}: bad field {token!r}")
        try:
            fields[m[1]] = int(m[2], 16 if m[1] in HEX_FIELDS else 10)
        except ValueError as err:
            raise FrameError(f"unit {unit}: bad field {token!r}") from err
    return fields


class AsciiBus(Bus):
    """ASCII request/reply over a serial line."""

    def __init__(self, cfg: SerialBus) -> None:
        super().__init__(cfg.id)
        self._line = SerialLine(cfg)

    async def open(self) -> None:
        """Open the serial port."""
        await self._line.open()

    async def close(self) -> None:
        """Close the serial port."""
        await self._line.close()

    async def read_device(
        self, unit: int, profile: Profile, timeout_s: float = 0.5, retries: int = 1
    ) -> Decoded:
        """``@AAARD`` and decode the reply's fields."""
        if profile.protocol != "ascii":
            raise ProtocolMismatchError(f"bus {self.id}: profile {profile.name} is not ASCII")
        payload = await self._transact(
            unit, "RD", lambda: self._command(unit, "RD", timeout_s), retries
        )
        return profile.decode_ascii(parse_fields(payload, unit))

    async def press_test(self, unit: int, timeout_s: float = 0.5, retries: int = 0) -> None:
        """``@AAATS``: set the detector's test bit for 5 s (commissioning)."""
        payload = await self._transact(
            unit, "TS", lambda: self._command(unit, "TS", timeout_s), retries
        )
        if payload.strip() != "OK":
            raise FrameError(f"unit {unit}: TS answered {payload!r}")

    async def _command(self, unit: int, command: str, timeout_s: float) -> str:
        if not 1 <= unit <= 247:
            raise ValueError(f"address {unit} outside 1..247")
        self._line.discard_input()
        request = f"@{unit:03d}{command}\r\n".encode("ascii")
        self._line.write(request)
        line = await self._line.read_until(
            lambda buf: buf.endswith(b"\n"), timeout_s + len(request) * self._line.char_time_s
        )
        return parse_reply(line, unit)
