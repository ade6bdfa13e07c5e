"""The synthetic fleet: deterministic by seed, and shaped like a district."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest

from replay.fleet import FleetOptions, generate_fleet, layout
from replay.reader import RecordingReader
from replay.recording import header_devices
from wire import DataMessage, EventMessage, Quality, decode_sequenced, decode_status

SMALL = FleetOptions(devices=300, hours=24, fires=4, faults=3)


@pytest.fixture(scope="module")
def fleet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fleet") / "a.jsonl.gz"
    generate_fleet(path, SMALL)
    return path


def test_same_seed_same_bytes_other_seed_other_bytes(fleet_file: Path, tmp_path: Path) -> None:
    again, other = tmp_path / "b.gz", tmp_path / "c.gz"
    generate_fleet(again, SMALL)
    generate_fleet(other, FleetOptions(devices=300, hours=24, fires=4, faults=3, seed=2))
    assert again.read_bytes() == fleet_file.read_bytes()
    assert other.read_bytes() != fleet_file.read_bytes()


def test_layout_mix_gateways_and_buildings() -> None:
    devices = layout(10_000)
    types = Counter(d.type for d in devices)
    assert types == {"smoke": 7000, "ebike": 1000, "manhole": 1500, "flood": 500}
    per_gateway = Counter(d.gateway for d in devices)
    assert len(per_gateway) == 100 and max(per_gateway.values()) <= 130
    smoke_per_building = Counter(d.building for d in devices if d.type == "smoke")
    assert set(smoke_per_building.values()) == {2}
    assert len({d.device for d in devices}) == 10_000
    assert all(d.grid and d.community for d in devices)


def _decoded(path: Path) -> tuple[RecordingReader, list[tuple[float, object]]]:
    out: list[tuple[float, object]] = []
    with RecordingReader(path) as reader:
        for e in reader.entries():
            if e.topic.endswith("/status"):
                out.append((e.rt, decode_status(e.topic, e.payload_bytes())))
            else:
                out.append((e.rt, decode_sequenced(e.topic, e.payload_bytes())))
    return reader, out


def test_contents_are_sane(fleet_file: Path) -> None:
    reader, messages = _decoded(fleet_file)
    devices = header_devices(reader.header, "fleet")
    assert devices is not None and len(devices) == 300
    assert all(d.heartbeat_s == 600 for d in devices)
    rts = [rt for rt, _ in messages]
    assert rts == sorted(rts), "lines are in arrival order"
    seqs: dict[str, list[int]] = defaultdict(list)
    events: Counter[tuple[str, bool | None]] = Counter()
    comm_errors = 0
    for _, m in messages:
        if isinstance(m, DataMessage | EventMessage):
            seqs[m.gw].append(m.seq)
        if isinstance(m, EventMessage):
            events[(m.event, m.active)] += 1
        if isinstance(m, DataMessage) and m.q is Quality.COMM_ERROR:
            comm_errors += 1
    for gw, got in seqs.items():
        assert got == list(range(1, len(got) + 1)), f"{gw}: seq contiguous from 1, in order"
    assert events[("smoke_alarm", True)] >= SMALL.fires
    assert events[("test_button", True)] > 0 and events[("ebike_detected", None)] > 0
    assert events[("level_alarm", True)] > 0, "the storm floods some roads"
    assert comm_errors > 0
    gateways = len({d.gateway for d in devices})
    first = [m for _, m in messages[:gateways]]
    assert all(getattr(m, "state", None) == "online" for m in first), "retained births first"


def test_fires_in_one_building_within_120_s(fleet_file: Path) -> None:
    reader, messages = _decoded(fleet_file)
    building = {d.device: d.building for d in header_devices(reader.header, "f") or []}
    alarms: dict[str, list[float]] = defaultdict(list)
    for _, m in messages:
        if isinstance(m, EventMessage) and m.event == "smoke_alarm" and m.active:
            alarms[building[m.dev]].append(m.ts)
    pairs = [ts for ts in alarms.values() if len(ts) == 2 and abs(ts[0] - ts[1]) <= 120]
    assert pairs


def test_daily_pattern_ebikes_peak_in_the_evening(fleet_file: Path) -> None:
    _, messages = _decoded(fleet_file)
    hours: Counter[int] = Counter()
    for _, m in messages:
        if isinstance(m, EventMessage) and m.event == "ebike_detected":
            hours[int(((m.ts + 8 * 3600) % 86400) // 3600)] += 1
    evening = sum(hours[h] for h in range(18, 22)) / 4
    night = sum(hours[h] for h in range(0, 5)) / 5
    assert evening > 5 * max(night, 0.1)
