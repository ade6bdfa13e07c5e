"""`scan`: which unit ids answer on a bus, and what they probably are."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.config import SerialBus, TcpBus
from edge.drivers import open_bus
from edge.errors import DeviceTimeout, ExceptionResponse, FrameError
from edge.profile import ProfileSet

IDENTITY_REGISTERS = 8  # registers 0-7: status ... identity word (6), firmware (7)
FIRMWARE_REGISTER = 7
# A Modbus TCP gateway answers for absent serial units with one of these (path / no reply).
_GATEWAY_SAYS_ABSENT = frozenset({0x0A, 0x0B})


def firmware_version(word: int) -> str:
    """The firmware word as firmware_sim/REGISTERS.md defines it: BCD, high byte major, low
    byte minor, without leading zeros (0x0102 = 'v1.2', 0x0110 = 'v1.10'); '' if not BCD."""
    digits = f"{word:04X}"
    if not digits.isdigit():
        return ""
    return f"v{int(digits[:2])}.{int(digits[2:])}"


@dataclass(frozen=True)
class FoundUnit:
    """A unit that answered: its registers 0-7 and the profile they suggest."""

    unit: int
    registers: tuple[int, ...] = ()
    profile: str | None = None
    note: str = ""

    @property
    def firmware(self) -> int | None:
        """The firmware word (register 7), if the unit gave us registers 0-7."""
        return (
            self.registers[FIRMWARE_REGISTER] if len(self.registers) > FIRMWARE_REGISTER else None
        )

    @property
    def firmware_version(self) -> str:
        """The firmware word as a version (see :func:`firmware_version`), or '' if unknown."""
        return "" if self.firmware is None else firmware_version(self.firmware)

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "profile": self.profile,
            "firmware": self.firmware,
            "firmware_version": self.firmware_version,
            "registers": list(self.registers),
            "note": self.note,
        }


@dataclass(frozen=True)
class ScanResult:
    """Every unit that answered, and the bus counters of the whole scan."""

    found: list[FoundUnit]
    scanned: int
    counters: Mapping[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "found": [f.as_dict() for f in self.found],
            "counters": dict(self.counters),
        }


async def scan_bus(
    bus: SerialBus | TcpBus,
    units: Sequence[int],
    profiles: ProfileSet,
    *,
    timeout_s: float,
    on_unit: Callable[[int, FoundUnit | None], None] = lambda _u, _f: None,
) -> ScanResult:
    """Read registers 0-7 of each unit once; BusError if the bus cannot be opened."""
    found: list[FoundUnit] = []
    async with open_bus(bus) as client:
        for unit in units:
            try:
                registers = await client.read_registers(
                    unit, 0, IDENTITY_REGISTERS, timeout_s=timeout_s
                )
            except DeviceTimeout:
                result = None
            except ExceptionResponse as err:
                result = (
                    None
                    if err.code in _GATEWAY_SAYS_ABSENT
                    else FoundUnit(
                        unit,
                        note=f"answers, but exception {err.code} for registers 0-7: unknown type",
                    )
                )
            except FrameError as err:
                result = FoundUnit(
                    unit, note=f"garbled reply ({err}): wrong baud/parity, or two units on one id?"
                )
            else:
                profile = profiles.guess(registers)
                result = FoundUnit(unit, tuple(registers), profile.name if profile else None)
            if result is not None:
                found.append(result)
            on_unit(unit, result)
        counters = dict(client.counters)
    return ScanResult(found, len(units), counters)
