"""The base of every simulated device: a raw register bank driven by a seeded model and a clock.

Time is always passed in (``now``, seconds on the simulator clock). The model advances in fixed
ticks from its creation time, so the values at a given time depend only on the seed and on when
events and writes happened — not on how often anyone reads.
"""

from __future__ import annotations

import abc
import enum
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from firmware_sim.errors import (
    ExceptionCode,
    ModbusError,
    UnknownEventError,
    UnknownFaultError,
)
from firmware_sim.registers import BANK_SIZE, DATA_REGS, RegisterSpec, defaults

Value = bool | int | float
TICK_S = 0.5
MAX_CATCH_UP_S = 6 * 3600.0


class Fault(enum.StrEnum):
    """Injectable faults (REGISTERS.md, "Faults")."""

    NONE = "none"
    SILENT = "silent"
    CRC = "crc"
    EXCEPTION = "exception"
    STUCK = "stuck"
    GARBAGE = "garbage"


@dataclass(frozen=True, slots=True)
class TruthField:
    """One engineering value: how it is read from the bank and, if settable, written to it."""

    key: str
    get: Callable[[Sequence[int]], Value]
    put: Callable[[list[int], float], None] | None = None


@dataclass(frozen=True, slots=True)
class DeviceType:
    """The fixed description of a device type: its registers, values and events."""

    name: str
    registers: tuple[RegisterSpec, ...]
    fields: tuple[TruthField, ...]
    events: Mapping[str, str]

    def settable(self) -> list[str]:
        """Names accepted as initial values."""
        return [f.key for f in self.fields if f.put is not None]


class Device(abc.ABC):
    """A simulated unit. Subclasses give ``TYPE`` and the model (`_tick`, `_settle`, `_event`)."""

    TYPE: ClassVar[DeviceType]

    def __init__(
        self, *, seed: int, now: float, initial: Mapping[str, Value] | None = None
    ) -> None:
        self._rng = random.Random(seed)
        self._bank = defaults(self.TYPE.registers)
        self._t = now
        self._fault = Fault.NONE
        self._frozen: list[int] | None = None
        self._apply_initial(initial or {})
        self._start()
        self._settle(now)

    @property
    def fault(self) -> Fault:
        """The fault currently injected."""
        return self._fault

    def set_fault(self, kind: str) -> None:
        """Inject a fault by name; ``none`` heals."""
        try:
            fault = Fault(kind)
        except ValueError:
            raise UnknownFaultError(f"unknown fault {kind!r}; one of {_names(Fault)}") from None
        self._fault = fault
        self._frozen = list(self._bank) if fault is Fault.STUCK else None

    def trigger(self, event: str, now: float) -> None:
        """Apply one event from the type's table at time *now*."""
        if event not in self.TYPE.events:
            known = ", ".join(self.TYPE.events)
            raise UnknownEventError(f"{self.TYPE.name} has no event {event!r}; one of {known}")
        self.advance(now)
        self._event(event, now)
        self._settle(now)

    def advance(self, now: float) -> None:
        """Run the model up to *now*."""
        if now - self._t > MAX_CATCH_UP_S:
            self._t = now - MAX_CATCH_UP_S
        while self._t + TICK_S <= now:
            self._t += TICK_S
            self._tick(self._t)
        self._settle(now)

    def registers(self, now: float) -> list[int]:
        """The raw bank as the wire shows it now (faults `stuck`/`garbage` applied)."""
        self.advance(now)
        if self._fault is Fault.GARBAGE:
            return [0xFFFF if a in DATA_REGS else w for a, w in enumerate(self._bank)]
        if self._frozen is not None:
            return list(self._frozen)
        return list(self._bank)

    def read(self, address: int, count: int, now: float) -> list[int]:
        """FC 03: *count* words from *address*; bad addresses raise ModbusError(02)."""
        if address < 0 or count < 1 or address + count > BANK_SIZE:
            raise ModbusError(ExceptionCode.ILLEGAL_ADDRESS)
        return self.registers(now)[address : address + count]

    def write(self, address: int, values: Sequence[int], now: float) -> None:
        """FC 06/16: all-or-nothing write of rw registers."""
        for offset, value in enumerate(values):
            self._check_write(address + offset, value)
        self.advance(now)
        for offset, value in enumerate(values):
            self._bank[address + offset] = value
        self._settle(now)

    def truth(self, now: float) -> dict[str, Value]:
        """The physical values in engineering units, from the live bank (`raw * scale`)."""
        self.advance(now)
        return {f.key: f.get(self._bank) for f in self.TYPE.fields}

    def _check_write(self, address: int, value: int) -> None:
        if not 0 <= address < BANK_SIZE or not self.TYPE.registers[address].writable:
            raise ModbusError(ExceptionCode.ILLEGAL_ADDRESS, f"register {address} is read-only")
        spec = self.TYPE.registers[address]
        if not spec.minimum <= value <= spec.maximum:
            raise ModbusError(ExceptionCode.ILLEGAL_VALUE, f"{spec.name} takes {spec.minimum}..")

    def _apply_initial(self, initial: Mapping[str, Value]) -> None:
        puts = {f.key: f.put for f in self.TYPE.fields if f.put is not None}
        for key, value in initial.items():
            put = puts.get(key)
            if put is None:
                known = list(puts)
                raise ValueError(f"{key!r} is not settable on {self.TYPE.name}; one of {known}")
            put(self._bank, float(value))

    @abc.abstractmethod
    def _start(self) -> None:
        """Take the model's state from the (initialised) bank."""

    @abc.abstractmethod
    def _tick(self, t: float) -> None:
        """One fixed step of slow behaviour (noise, drain, ramps) at tick time *t*."""

    @abc.abstractmethod
    def _settle(self, now: float) -> None:
        """Timers and derived status bits, at the exact time *now*."""

    @abc.abstractmethod
    def _event(self, event: str, now: float) -> None:
        """Apply an event already checked against the type's table."""


def _names(enum_cls: type[enum.StrEnum]) -> str:
    return ", ".join(m.value for m in enum_cls)
