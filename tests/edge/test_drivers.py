"""Bus drivers against the simulator: RTU on a pty, Modbus TCP, ASCII serial."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from edge.config import SerialBus, TcpBus
from edge.drivers import Bus, ProtocolMismatchError, open_bus
from edge.drivers.ascii import checksum, parse_fields, parse_reply
from edge.drivers.rtu import check_reply, crc16, frame
from edge.errors import BusError, DeviceTimeout, ExceptionResponse, FrameError
from edge.profile import ProfileSet
from firmware_sim import ManualClock, SimConfig, SimulatorSet

PROFILES = ProfileSet.load([])
# unit, sim device id, type (= profile name), initial values with signs that matter
UNITS: list[tuple[int, str, str, dict[str, float]]] = [
    (1, "smk", "smoke", {"temperature_c": -12.5}),
    (2, "ebk", "ebike", {}),
    (3, "mh", "manhole", {"tilt_deg": -20.5}),
    (4, "fld", "flood", {}),
]


def sim_config(transport: str) -> SimConfig:
    devices: list[dict[str, Any]] = [
        {"id": dev, "type": kind, "transport": transport, "bus": "b", "unit": unit, "initial": init}
        for unit, dev, kind, init in UNITS
    ]
    if transport == "ascii":
        devices = [
            {"id": "smk", "type": "smoke", "transport": "ascii", "bus": "b", "unit": 1,
             "initial": {"temperature_c": -12.5}},
            {"id": "smk2", "type": "smoke", "transport": "ascii", "bus": "b", "unit": 42},
        ]  # fmt: skip
    return SimConfig.model_validate({"devices": devices})


def bus_config(transport: str, address: str) -> SerialBus | TcpBus:
    if transport == "tcp":
        host, port = address.rsplit(":", 1)
        return TcpBus(id="bus-t", kind="tcp", host=host, port=int(port))
    protocol = "ascii" if transport == "ascii" else "modbus-rtu"
    return SerialBus(id=f"bus-{transport}", kind="serial", protocol=protocol, port=address)


class Field:
    """A started simulator and a driver open on its one bus."""

    def __init__(self, sims: SimulatorSet, bus: Bus, clock: ManualClock) -> None:
        self.sims, self.bus, self.clock = sims, bus, clock


async def _field(transport: str) -> AsyncIterator[Field]:
    clock = ManualClock()  # values move only when the test says so: reads equal truth()
    async with SimulatorSet.from_config(sim_config(transport), clock=clock) as sims:
        [endpoint] = sims.endpoints()
        async with open_bus(bus_config(transport, endpoint.address)) as bus:
            yield Field(sims, bus, clock)


@pytest.fixture(params=["rtu", "tcp"])
async def modbus(request: pytest.FixtureRequest) -> AsyncIterator[Field]:
    async for f in _field(request.param):
        yield f


@pytest.fixture
async def rtu() -> AsyncIterator[Field]:
    async for f in _field("rtu"):
        yield f


@pytest.fixture
async def tcp() -> AsyncIterator[Field]:
    async for f in _field("tcp"):
        yield f


@pytest.fixture
async def ascii_line() -> AsyncIterator[Field]:
    async for f in _field("ascii"):
        yield f


async def assert_reads_truth(f: Field) -> None:
    for unit, dev, kind, _ in UNITS:
        decoded = await f.bus.read_device(unit, PROFILES.get(kind))
        assert decoded.invalid == ()
        assert decoded.values == f.sims.device(dev).truth(), dev
        for name, value in f.sims.device(dev).truth().items():
            assert type(decoded.values[name]) is type(value), name


# --- every type reads as the simulator's truth ---------------------------------------


async def test_every_type_reads_as_truth(modbus: Field) -> None:
    await assert_reads_truth(modbus)
    assert modbus.sims.device("smk").truth()["temperature_c"] == -125 * 0.1
    assert modbus.sims.device("mh").truth()["tilt_deg"] == -205 * 0.1
    assert modbus.sims.device("mh").truth()["signal_dbm"] < 0
    assert dict(modbus.bus.counters) == {
        "transactions": 4, "ok": 4, "timeouts": 0, "frame_errors": 0, "exceptions": 0,
        "retries": 0, "bus_errors": 0,
    }  # fmt: skip


async def test_events_and_time_move_values(modbus: Field) -> None:
    for dev, event in [("smk", "smoke"), ("ebk", "ebike"), ("mh", "tilt"), ("fld", "rain")]:
        modbus.sims.device(dev).trigger(event)
    modbus.clock.advance(30.0)
    await assert_reads_truth(modbus)
    ebike = await modbus.bus.read_device(2, PROFILES.get("ebike"))
    assert ebike.values["detections"] == 1 and ebike.values["last_detection_ts"] > 1_600_000_000
    smoke = await modbus.bus.read_device(1, PROFILES.get("smoke"))
    assert smoke.values["alarm"] is True


async def test_write_register_and_raw_reads(modbus: Field) -> None:
    await modbus.bus.write_register(1, 4, 250)
    assert modbus.sims.device("smk").truth()["alarm_threshold_pct_per_m"] == 250 * 0.01
    regs = await modbus.bus.read_registers(3, 0, 8)
    guessed = PROFILES.guess(regs)
    assert guessed is not None and guessed.name == "manhole"
    with pytest.raises(ExceptionResponse) as caught:
        await modbus.bus.write_register(1, 6, 1)  # identity is read-only
    assert caught.value.code == 2
    with pytest.raises(ExceptionResponse) as caught:
        await modbus.bus.read_registers(1, 200, 2)  # no such register
    assert caught.value.code == 2


# --- faults: the right error, exact counters, never a crash ---------------------------


async def test_silent_unit_times_out_with_our_timeout_and_retries(modbus: Field) -> None:
    modbus.sims.device("fld").set_fault("silent")
    start = time.monotonic()
    with pytest.raises(DeviceTimeout):
        await modbus.bus.read_device(4, PROFILES.get("flood"), timeout_s=0.1, retries=2)
    assert time.monotonic() - start < 0.3 * 3
    c = modbus.bus.counters
    assert (c["transactions"], c["timeouts"], c["retries"], c["ok"]) == (3, 3, 2, 0)
    await assert_reads_truth_except(modbus, "fld")
    modbus.sims.device("fld").set_fault("none")
    await assert_reads_truth(modbus)


async def assert_reads_truth_except(f: Field, skip: str) -> None:
    for unit, dev, kind, _ in UNITS:
        if dev != skip:
            assert (await f.bus.read_device(unit, PROFILES.get(kind))).values == f.sims.device(
                dev
            ).truth()


async def test_exception_response_is_not_retried(modbus: Field) -> None:
    modbus.sims.device("smk").set_fault("exception")
    with pytest.raises(ExceptionResponse) as caught:
        await modbus.bus.read_device(1, PROFILES.get("smoke"), retries=3)
    assert caught.value.code == 4
    c = modbus.bus.counters
    assert (c["transactions"], c["exceptions"], c["retries"]) == (1, 1, 0)


async def test_garbage_values_are_listed_invalid(modbus: Field) -> None:
    modbus.sims.device("mh").set_fault("garbage")
    decoded = await modbus.bus.read_device(3, PROFILES.get("manhole"))
    assert decoded.invalid == (
        "displaced", "tilt_alarm", "water_alarm", "low_battery", "water_level_mm", "battery_mv",
    )  # fmt: skip
    assert modbus.bus.counters["ok"] == 1


async def test_rtu_crc_error_is_a_frame_error(rtu: Field) -> None:
    rtu.sims.device("ebk").set_fault("crc")
    with pytest.raises(FrameError, match="CRC"):
        await rtu.bus.read_device(2, PROFILES.get("ebike"), retries=1)
    c = rtu.bus.counters
    assert (c["transactions"], c["frame_errors"], c["retries"], c["timeouts"]) == (2, 2, 1, 0)
    assert rtu.sims.stats("b").crc_errors_sent == 2
    await assert_reads_truth_except(rtu, "ebk")


async def test_rtu_unknown_unit_times_out(rtu: Field) -> None:
    with pytest.raises(DeviceTimeout):
        await rtu.bus.read_registers(99, 0, 1, timeout_s=0.05)


async def test_tcp_crc_behind_gateway_is_exception_11(tcp: Field) -> None:
    tcp.sims.device("smk").set_fault("crc")
    with pytest.raises(ExceptionResponse) as caught:
        await tcp.bus.read_device(1, PROFILES.get("smoke"), retries=1)
    assert caught.value.code == 0x0B
    assert tcp.bus.counters["retries"] == 1  # "target failed to respond" is worth a retry


async def test_concurrent_polls_share_the_line(modbus: Field) -> None:
    results = await asyncio.gather(
        *(modbus.bus.read_device(u, PROFILES.get(k)) for u, _, k, _ in UNITS for _ in range(3))
    )
    assert all(not r.invalid for r in results)
    assert modbus.bus.counters["transactions"] == 12


# --- ASCII line ------------------------------------------------------------------------


async def test_ascii_reads_as_truth(ascii_line: Field) -> None:
    profile = PROFILES.get("smoke-ascii")
    for unit, dev in [(1, "smk"), (42, "smk2")]:
        decoded = await ascii_line.bus.read_device(unit, profile)
        truth = ascii_line.sims.device(dev).truth()
        assert decoded.values == {k: truth[k] for k in decoded.values}
        assert decoded.invalid == ()
    assert decoded.values["temperature_c"] > 0
    ascii_line.sims.device("smk").trigger("smoke")
    ascii_line.clock.advance(5.0)
    decoded = await ascii_line.bus.read_device(1, profile)
    assert decoded.values["alarm"] is True
    assert decoded.values == {k: ascii_line.sims.device("smk").truth()[k] for k in decoded.values}


async def test_ascii_negative_temperature(ascii_line: Field) -> None:
    decoded = await ascii_line.bus.read_device(1, PROFILES.get("smoke-ascii"))
    assert decoded.values["temperature_c"] == -125 * 0.1


@pytest.mark.parametrize(("fault", "error", "counter"), [
    ("crc", FrameError, "frame_errors"),
    ("silent", DeviceTimeout, "timeouts"),
])  # fmt: skip
async def test_ascii_faults(
    ascii_line: Field, fault: str, error: type[Exception], counter: str
) -> None:
    ascii_line.sims.device("smk").set_fault(fault)
    with pytest.raises(error):
        await ascii_line.bus.read_device(1, PROFILES.get("smoke-ascii"), timeout_s=0.1)
    assert ascii_line.bus.counters[counter] == 2
    ascii_line.sims.device("smk").set_fault("none")
    await ascii_line.bus.read_device(1, PROFILES.get("smoke-ascii"))


async def test_profile_must_fit_the_bus(ascii_line: Field) -> None:
    with pytest.raises(ProtocolMismatchError):
        await ascii_line.bus.read_device(1, PROFILES.get("smoke"))
    with pytest.raises(ProtocolMismatchError):
        await ascii_line.bus.read_registers(1, 0, 1)


async def test_modbus_bus_rejects_ascii_profile(rtu: Field) -> None:
    with pytest.raises(ProtocolMismatchError):
        await rtu.bus.read_device(1, PROFILES.get("smoke-ascii"))


# --- unusable buses --------------------------------------------------------------------


async def test_missing_serial_port_is_a_bus_error(tmp_path: Any) -> None:
    cfg = SerialBus(id="bus-x", kind="serial", port=str(tmp_path / "ttyNONE"))
    with pytest.raises(BusError, match="bus-x"):
        async with open_bus(cfg):
            pass


async def test_refused_tcp_is_a_bus_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BusError, match="bus-t"):
        async with open_bus(TcpBus(id="bus-t", kind="tcp", host="127.0.0.1", port=port)):
            pass


async def test_sim_gone_mid_flight_gives_errors_not_crashes() -> None:
    clock = ManualClock()
    sims = SimulatorSet.from_config(sim_config("tcp"), clock=clock)
    await sims.start()
    [endpoint] = sims.endpoints()
    async with open_bus(bus_config("tcp", endpoint.address)) as bus:
        await bus.read_device(1, PROFILES.get("smoke"))
        await sims.aclose()
        with pytest.raises((BusError, DeviceTimeout)):
            await bus.read_device(1, PROFILES.get("smoke"), timeout_s=0.2)


# --- framing, pure ----------------------------------------------------------------------


def test_rtu_framing() -> None:
    assert frame(1, bytes.fromhex("0300000008")).hex() == "010300000008440c"
    reply = frame(1, bytes.fromhex("03020102"))
    assert check_reply(reply, 1, 3) == bytes.fromhex("020102")
    with pytest.raises(FrameError, match="CRC"):
        check_reply(reply[:-1] + bytes([reply[-1] ^ 1]), 1, 3)
    with pytest.raises(FrameError, match="short"):
        check_reply(reply[:4], 1, 3)
    with pytest.raises(FrameError, match="unit 2"):
        check_reply(frame(2, bytes.fromhex("03020102")), 1, 3)
    with pytest.raises(ExceptionResponse) as caught:
        check_reply(frame(1, bytes.fromhex("8302")), 1, 3)
    assert caught.value.code == 2
    with pytest.raises(DeviceTimeout):
        check_reply(b"", 1, 3)
    assert crc16(b"") == b"\xff\xff"


def test_ascii_framing() -> None:
    body = b"!007 S=0011 OB=350 T=-100 B=2900"
    line = body + f"*{checksum(body):02X}\r\n".encode()
    assert parse_fields(parse_reply(line, 7), 7) == {"S": 0x11, "OB": 350, "T": -100, "B": 2900}
    with pytest.raises(FrameError, match="checksum"):
        parse_reply(body + f"*{checksum(body) ^ 1:02X}\r\n".encode(), 7)
    with pytest.raises(FrameError, match="address 7"):
        parse_reply(line, 8)
    with pytest.raises(FrameError, match="malformed"):
        parse_reply(b"!007 S=0011 OB=35", 7)
    with pytest.raises(FrameError):
        parse_fields("S=zz", 7)
