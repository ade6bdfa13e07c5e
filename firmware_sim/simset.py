"""A set of simulated buses and devices, started and stopped together."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from types import TracebackType

from firmware_sim.ascii_bus import AsciiBus
from firmware_sim.bus import Bus, Transport
from firmware_sim.catalog import MODELS
from firmware_sim.clock import Clock, ScaledClock
from firmware_sim.config import BusConfig, SimConfig, merge
from firmware_sim.device import Device, Fault, Value
from firmware_sim.errors import UnknownDeviceError
from firmware_sim.line import LineTiming
from firmware_sim.loader import check, load_config
from firmware_sim.rtu import RtuBus
from firmware_sim.stats import BusStats
from firmware_sim.tcp import TcpBus
from firmware_sim.timeline import play

ConfigSource = SimConfig | str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a client reaches one bus: a pty slave path or ``127.0.0.1:PORT``."""

    bus: str
    transport: str
    address: str


DATA_BITS = 8  # every simulated serial line frames 8 data bits (REGISTERS.md: 8N1 default)


@dataclass(frozen=True, slots=True)
class SerialLine:
    """How a master must set its serial port to talk to a simulated rtu / ascii bus."""

    baud: int
    data_bits: int
    parity: str  # N, E or O
    stop_bits: int

    def __str__(self) -> str:
        return f"{self.baud} {self.data_bits}{self.parity}{self.stop_bits}"


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One simulated device and where it is: for a serial bus, with the line settings."""

    id: str
    type: str
    transport: str
    bus: str
    unit: int
    address: str
    serial: SerialLine | None  # None on a TCP bus


class DeviceHandle:
    """A device bound to the simulator clock: what tests and the control server use."""

    def __init__(self, device_id: str, model: Device, bus: Bus) -> None:
        self.id = device_id
        self.model = model
        self._bus = bus

    def truth(self) -> dict[str, Value]:
        """Current values in engineering units (the physical truth, faults not applied)."""
        return self.model.truth(self._bus.clock.now())

    def registers(self) -> list[int]:
        """Registers 0-7 as the wire shows them now (``stuck``/``garbage`` applied)."""
        return self.model.registers(self._bus.clock.now())

    def trigger(self, event: str) -> None:
        """Apply an event now (UnknownEventError if the type has no such event)."""
        self.model.trigger(event, self._bus.clock.now())

    def set_fault(self, kind: str) -> None:
        """Inject a fault (``none`` heals)."""
        self.model.set_fault(kind)

    @property
    def fault(self) -> Fault:
        """The fault in effect."""
        return self.model.fault


class SimulatorSet:
    """Buses and devices from a config; an async context manager that serves while open."""

    def __init__(self, config: SimConfig, *, clock: Clock | None = None) -> None:
        check(config)
        self.config = config
        self.clock: Clock = clock or ScaledClock()
        self._buses = {b.name: _make_bus(b, self.clock) for b in config.bus_configs()}
        self._handles: dict[str, DeviceHandle] = {}
        self._device_bus: dict[str, tuple[str, int]] = {}
        now = self.clock.now()
        for d in config.devices:
            model = MODELS[d.type](seed=d.seed, now=now, initial=d.initial)
            self._buses[d.bus].add(d.unit, model)
            self._handles[d.id] = DeviceHandle(d.id, model, self._buses[d.bus])
        self._timeline: asyncio.Task[None] | None = None

    @classmethod
    def from_config(
        cls,
        config: ConfigSource,
        *,
        scenario: ConfigSource | None = None,
        clock: Clock | None = None,
        speed: float = 1.0,
    ) -> SimulatorSet:
        """From a SimConfig or a YAML path, optionally with a scenario played on top."""
        base = config if isinstance(config, SimConfig) else load_config(config)
        if scenario is not None:
            extra = scenario if isinstance(scenario, SimConfig) else load_config(scenario, base)
            base = merge(base, extra)
        return cls(base, clock=clock or ScaledClock(speed))

    async def __aenter__(self) -> SimulatorSet:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open every endpoint and start the timeline."""
        try:
            for bus in self._buses.values():
                await bus.start()
        except BaseException:
            await self.aclose()
            raise
        models = {i: h.model for i, h in self._handles.items()}
        coro = play(self.config.timeline, models, self.clock, self.clock.now())
        self._timeline = asyncio.create_task(coro, name="firmware_sim.timeline")

    async def aclose(self) -> None:
        """Stop the timeline and close every endpoint."""
        if self._timeline is not None:
            self._timeline.cancel()
            await asyncio.gather(self._timeline, return_exceptions=True)
        for bus in self._buses.values():
            await bus.aclose()

    async def timeline_done(self) -> None:
        """Wait until the last timeline step has been applied."""
        if self._timeline is not None:
            await asyncio.shield(self._timeline)

    def endpoints(self) -> list[Endpoint]:
        """One entry per bus."""
        return [Endpoint(b.name, b.transport.value, b.address) for b in self._buses.values()]

    def devices(self) -> list[DeviceInfo]:
        """One entry per device, in config order."""
        lines = {
            b.name: None
            if b.transport is Transport.TCP
            else SerialLine(b.baud, DATA_BITS, b.parity, b.stopbits)
            for b in self.config.buses
        }
        out = []
        for d in self.config.devices:
            address = self._buses[d.bus].address
            info = DeviceInfo(d.id, d.type, d.transport.value, d.bus, d.unit, address, lines[d.bus])
            out.append(info)
        return out

    def device(self, device_id: str) -> DeviceHandle:
        """The device *device_id* (UnknownDeviceError if none)."""
        try:
            return self._handles[device_id]
        except KeyError:
            raise UnknownDeviceError(f"no simulated device {device_id!r}") from None

    def stats(self, bus: str) -> BusStats:
        """A snapshot of one bus's counters."""
        try:
            return self._buses[bus].stats.copy()
        except KeyError:
            raise UnknownDeviceError(f"no simulated bus {bus!r}") from None


def _make_bus(cfg: BusConfig, clock: Clock) -> Bus:
    if cfg.transport is Transport.TCP:
        return TcpBus(cfg.name, clock, cfg.port)
    timing = LineTiming(cfg.baud, cfg.parity, cfg.stopbits)
    if cfg.transport is Transport.ASCII:
        return AsciiBus(cfg.name, clock, timing)
    return RtuBus(cfg.name, clock, timing)
