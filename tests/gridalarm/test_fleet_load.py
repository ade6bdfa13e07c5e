"""`gridalarm sim fleet --live`: a synthetic district as real wire traffic at a chosen rate, with
alarm incidents; it stops by itself, says each gateway's last seq and writes the devices CSV.
The fleet's seq file and checkpoint rows made from what a subscriber received pass
`sim fleet-check`. Real script, real Mosquitto."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from cloud.database import connect, open_database
from cloud.ingest.checkpoint import commit_checkpoint
from gridalarm.brokers import Mosquitto
from gridalarm.fleetcheck import check_fleet
from gridalarm.fleetload import LoadOptions, district, plan_alarms
from rules.devices_csv import read_devices_csv
from tests.support import Recorder, wait_until
from wire import EventMessage, decode_sequenced, parse_topic
from wire.dedup import SeqTracker
from wire.topics import TopicKind


def gridalarm(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridalarm", *args], check=False, capture_output=True, text=True,
        timeout=timeout_s,
    )  # fmt: skip


def test_the_district_is_dealt_out_over_the_gateways_asked_for() -> None:
    devices = district(200, 5, 600.0)
    per_gateway = Counter(d.gateway for d in devices)
    assert sorted(per_gateway) == [f"gw-{n}" for n in range(5)]
    assert set(per_gateway.values()) == {40}
    assert {d.grid for d in devices} == {"grid-0", "grid-1", "grid-2"}  # two gateways a grid
    assert len({d.device for d in devices}) == 200
    buildings: dict[str, set[str]] = {}
    for d in devices:
        if d.type == "smoke":
            buildings.setdefault(d.building, set()).add(d.gateway)
    split = [b for b, gws in buildings.items() if len(gws) > 1]
    assert len(split) <= 5, "a building's detectors stay on one gateway (but at the cuts)"


def test_alarms_are_spread_over_the_run_each_on_its_own_device() -> None:
    opts = LoadOptions([("127.0.0.1", 1883)], Path("x"), 2000, 20, 200.0, 600.0, alarms=8)
    devices = district(opts.devices, opts.gateways, 600.0)
    overrides, incidents = plan_alarms(devices, 8, 1000.0, opts)
    assert len(incidents) == len(overrides) == 8
    # one in four a flood, but the last: too near the end for the level to be held long enough
    assert [i.kind for i in incidents] == ["fire"] * 3 + ["flood"] + ["fire"] * 4
    starts = [i.start for i in incidents]
    assert starts == sorted(starts)
    assert 1000 < starts[0] and starts[-1] < 1600 - 2 * opts.poll_s  # noqa: SIM300 - a range
    fire = next(i for i in incidents if i.kind == "fire")
    assert overrides[fire.target].at(fire.start)[1] == {
        "alarm": True, "obscuration_pct_per_m": pytest.approx(6.75, abs=2.25),
    }  # fmt: skip
    assert not overrides[fire.target].at(fire.start - 10)[0], "quiet before it starts"


def test_a_live_run_publishes_at_its_rate_and_stops_by_itself(
    broker: Mosquitto, tmp_path: Path
) -> None:
    recorder = Recorder(broker.port, "ga/v1/#", client_id="fleet-load-test")
    seq_file, csv = tmp_path / "fleet.json", tmp_path / "devices.csv"
    try:
        run = gridalarm(
            "sim", "fleet", "--live", "--gateways", "5", "--devices", "200",
            "--broker", f"mqtt://127.0.0.1:{broker.port}", "--rate", "200", "--duration", "3",
            "--alarms", "3", "--seq-file", str(seq_file), "--devices-csv", str(csv),
            "--incidents", str(tmp_path / "incidents.json"),
        )  # fmt: skip
    finally:
        recorder.close()
    assert run.returncode == 0, run.stderr
    last = json.loads(seq_file.read_text())
    assert sorted(last) == [f"gw-{n}" for n in range(5)]
    received = [
        decode_sequenced(topic, payload)
        for topic, payload, _ in recorder.snapshot()
        if parse_topic(topic).kind in (TopicKind.DATA, TopicKind.EVENT)
    ]
    for gw, n in last.items():
        assert sorted({m.seq for m in received if m.gw == gw}) == list(range(1, n + 1)), gw
    published = sum(last.values())
    assert f"published {published} messages" in run.stdout
    assert 400 <= published <= 900, "200 devices at 200/s for 3 s: every device thrice, + events"
    alarms = {m.dev for m in received if isinstance(m, EventMessage) and m.event == "smoke_alarm"}
    planned = {i["target"] for i in json.loads((tmp_path / "incidents.json").read_text())}
    assert alarms == planned and len(planned) == 3, "each incident alarmed on the wire"
    devices = read_devices_csv(csv.read_text(), str(csv))
    assert len(devices) == 200 and {d.gateway for d in devices} == set(last)

    # what the subscriber received, checkpointed as the cloud does, passes the check
    tracker, counts = SeqTracker(), Counter[str]()
    for m in received:
        if tracker.first_time(m.gw, m.seq):
            counts["event" if isinstance(m, EventMessage) else "data"] += 1
    db = open_database(f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    commit_checkpoint(db, [], {"dedup": tracker.snapshot(), "counts": dict(counts)})
    db.dispose()
    check = gridalarm(
        "sim", "fleet-check", "--seq-file", str(seq_file), "--database",
        str(tmp_path / "cloud.sqlite"),
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "5 of 5 gateways complete" in check.stdout
    assert "none doubled" in check.stdout


def test_the_recording_still_wants_out_without_live(tmp_path: Path) -> None:
    run = gridalarm("sim", "fleet", "--devices", "10")
    assert run.returncode == 2
    assert "--out" in run.stderr


def test_a_cloud_that_ingested_a_live_run_passes_the_fleet_check(
    broker: Mosquitto, tmp_path: Path
) -> None:
    url = f"mqtt://127.0.0.1:{broker.port}"
    fleet = ["sim", "fleet", "--live", "--gateways", "5", "--devices", "200", "--broker", url]
    # the district's devices first (--duration 0 publishes nothing), for the cloud to register
    first = gridalarm(*fleet, "--duration", "0", "--devices-csv", str(tmp_path / "devices.csv"))
    assert first.returncode == 0, first.stderr
    config = {
        "mqtt": {"url": url, "client_id": "cloud-fleet"},
        "database_url": "sqlite:///cloud.sqlite",
        "devices_csv": "devices.csv",
        "sink": {"kind": "none"},
        "metrics_listen": None,
    }
    (tmp_path / "cloud.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    log = tmp_path / "cloud.log"
    with log.open("ab") as out:
        cloud = subprocess.Popen(
            [sys.executable, "-m", "gridalarm", "cloud", "run", "--config", "cloud.yaml"],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(lambda: "(session present" in log.read_text(), 30, "the cloud to subscribe")
        db = connect(f"sqlite:///{tmp_path / 'cloud.sqlite'}")  # the cloud made the tables
        seq_file = tmp_path / "fleet.json"
        incidents = tmp_path / "incidents.json"
        run = gridalarm(
            *fleet, "--rate", "200", "--duration", "3", "--seq-file", str(seq_file),
            "--alarms", "2", "--incidents", str(incidents),
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        published = json.loads(seq_file.read_text())
        wait_until(lambda: check_fleet(db, published).ok, 30, "the cloud to checkpoint all")
        result = check_fleet(db, published)
        db.dispose()
        board = gridalarm("cloud", "alarms", "--config", str(tmp_path / "cloud.yaml"), "--json")
    finally:
        cloud.send_signal(signal.SIGTERM)
        cloud.wait(30)
    assert result.handled == result.published == sum(published.values()) > 0
    raised = sorted(a["key"] for a in json.loads(board.stdout)["alarms"])
    fires = sorted(f"{i['target']}/smoke-fire" for i in json.loads(incidents.read_text()))
    assert raised == fires and len(fires) == 2, "each incident raised its alarm, once"
