"""A replay split over processes (replay.parallel) writes the report one process writes."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from replay.errors import ReplayError
from replay.fleet import FleetOptions, generate_fleet
from replay.parallel import Plan, plan, replay_parallel
from replay.reader import RecordingReader
from replay.report import encode_report
from replay.session import ReplayOptions, load_engine, load_registry, run_replay
from rules import DeviceInfo
from tests.replay.test_replay import T0, Msg, app, rules_b, runner, write_stream
from wire import DataMessage, EventMessage, GatewayStatus, encode


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 devices for a day with fires, faults and two gateway outages."""
    path = tmp_path_factory.mktemp("fleet") / "fleet.jsonl.gz"
    generate_fleet(path, FleetOptions(devices=300, hours=24, fires=4, faults=4, outages=2))
    return path


def report_bytes(path: Path, jobs: int, compare: Path | None = None) -> bytes:
    return encode_report(run_replay(ReplayOptions(path, compare=compare, jobs=jobs)).report)


def test_two_and_three_parts_write_the_one_process_report_byte_for_byte(fleet: Path) -> None:
    one = report_bytes(fleet, 1)
    report = json.loads(one)
    kinds = report["summary"]["by_kind"]
    by_rule = {t["rule_id"] for t in report["transitions"]}
    # what the merge must order: clock-fired timers of both parts (device silent, gateway
    # offline, on- and off-delays), correlation and every kind of step
    assert {"device-silent", "gateway-offline", "smoke-fire"} <= by_rule
    assert kinds["confirm"] >= 1 and kinds["suppressed"] >= 1
    assert report_bytes(fleet, 2) == one
    assert report_bytes(fleet, 3) == one


def test_a_backtest_against_a_second_rule_set_is_the_same_in_parts(
    fleet: Path, tmp_path: Path
) -> None:
    other = rules_b(tmp_path)
    one = report_bytes(fleet, 1, other)
    assert json.loads(one)["compare"]["counts"]["shifted"] >= 1
    assert report_bytes(fleet, 2, other) == one


def test_a_building_on_two_gateways_keeps_them_in_one_part(tmp_path: Path) -> None:
    """Detectors of one building on gw-1 and gw-2 confirm each other only in one engine."""
    devices = [
        DeviceInfo("smk-a", "gw-1", "smoke", "grid-1", "b-7", "comm-1", 600),
        DeviceInfo("smk-b", "gw-2", "smoke", "grid-1", "b-7", "comm-1", 600),
        *(DeviceInfo(f"smk-{g}", f"gw-{g}", "smoke", "grid-2", f"b-{g}", "comm-1", 600)
          for g in range(3, 9)),
    ]  # fmt: skip
    the_plan = plan({d.device: d for d in devices}, 2)
    assert the_plan.parts == 2
    assert the_plan.gateways["gw-1"] == the_plan.gateways["gw-2"]
    load = [sum(the_plan.gateways[d.gateway] == p for d in devices) for p in range(2)]
    assert load == [4, 4]  # the group of 2 devices first, then the 6 others to the lighter part

    msgs: list[tuple[float, Msg]] = [
        (T0 + g, GatewayStatus(f"gw-{g}", "online", T0 + g)) for g in range(1, 9)
    ]
    seqs = dict.fromkeys(range(1, 9), 0)
    for i in range(30):  # heartbeats from everyone, then two fire alarms 40 s apart
        for d in devices:
            g = int(d.gateway[3:])
            seqs[g] += 1
            ts = T0 + 10 + 60 * i
            msgs.append((ts + 0.5, DataMessage(d.gateway, d.device, seqs[g], ts,
                                               values={"temperature_c": 21.0})))  # fmt: skip
    for dev, gw, at in (("smk-a", 1, 700.0), ("smk-b", 2, 740.0)):
        seqs[gw] += 1
        msgs.append((T0 + at + 0.2, EventMessage(f"gw-{gw}", dev, seqs[gw], T0 + at,
                                                 "smoke_alarm", True)))  # fmt: skip
    msgs.sort(key=lambda m: m[0])
    path = write_stream(tmp_path / "b7.gz", msgs, devices)
    one = report_bytes(path, 1)
    confirms = [t for t in json.loads(one)["transitions"] if t["kind"] == "confirm"]
    assert [t["key"] for t in confirms] == ["smk-a/smoke-fire", "smk-b/smoke-fire"]
    assert confirms[0]["detail"]["confirmed_by"] == ["smk-a", "smk-b"]
    assert report_bytes(path, 2) == one

    # the same stream with the plan that ignores buildings would have missed the confirmation
    apart = Plan(2, {**the_plan.gateways, "gw-2": 1 - the_plan.gateways["gw-1"]})
    engine = load_engine(None)
    with RecordingReader(path) as reader:
        registry = load_registry(reader, None)
        run = replay_parallel(reader, [engine.engine], [engine.texts], registry, apart)
    assert not [s for s in run.steps[0] if s.transition.kind.value == "confirm"]


def test_unregistered_gateways_and_bad_topics_are_counted_once(tmp_path: Path) -> None:
    devices = [DeviceInfo(f"smk-{g}", f"gw-{g}", "smoke", "grid-1", "", "comm-1", 600)
               for g in range(1, 5)]  # fmt: skip
    the_plan = plan({d.device: d for d in devices}, 2)
    assert the_plan.part_of("ga/v1/gw-1/dev/smk-1/data") == the_plan.gateways["gw-1"]
    assert the_plan.part_of("not/ours") == 0
    stray = the_plan.part_of("ga/v1/gw-99/dev/x/data")
    assert stray == the_plan.part_of("ga/v1/gw-99/status")  # a gateway's messages stay whole
    msgs: list[tuple[float, Msg]] = [
        (T0 + i, DataMessage(f"gw-{g}", f"smk-{g}", i, T0 + i, values={"temperature_c": 20.0}))
        for i in range(1, 40)
        for g in range(1, 5)
    ]
    msgs += [(T0 + 50, DataMessage("gw-99", "x", 1, T0 + 50, values={"temperature_c": 20.0}))]
    msgs += [(T0 + 51, GatewayStatus("gw-99", "offline", T0 + 51))]
    path = write_stream(tmp_path / "s.gz", msgs, devices)
    raw = path.read_bytes()
    one = report_bytes(path, 1)
    stats = json.loads(one)["stats"]
    assert stats["unknown_device"] == 1 and stats["unknown_devices"] == ["x"]
    assert stats["status"] == 1 and stats["data"] == 4 * 39
    assert report_bytes(path, 2) == one
    assert path.read_bytes() == raw


def test_a_part_that_cannot_run_fails_the_replay_naming_why(fleet: Path, tmp_path: Path) -> None:
    copy = tmp_path / "gone.gz"
    copy.write_bytes(fleet.read_bytes())
    engine = load_engine(None)
    with RecordingReader(copy) as reader:
        registry = load_registry(reader, None)
        copy.unlink()  # this process reads on from its open file; a spawned part cannot open it
        with pytest.raises(ReplayError, match=r"^replay part 1 failed: .*gone.gz: cannot open"):
            replay_parallel(reader, [engine.engine], [engine.texts], registry, plan(registry, 2))


def _parts_of(parent: int) -> list[int]:
    """Pids of the replay parts *parent* started (Linux: read off /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
            if int(fields[1]) == parent and b"replay.parallel" in cmdline:
                found.append(int(stat.parent.name))
    return found


def test_a_part_killed_fails_the_replay_instead_of_a_report_missing_its_devices(
    fleet: Path,
) -> None:
    engine = load_engine(None)
    killed: list[int] = []

    def kill_the_first_part() -> None:
        deadline = time.monotonic() + 30
        while not killed and time.monotonic() < deadline:
            for pid in _parts_of(os.getpid()):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.005)

    killer = threading.Thread(target=kill_the_first_part)
    with RecordingReader(fleet) as reader:
        registry = load_registry(reader, None)
        killer.start()
        try:
            with pytest.raises(
                ReplayError, match=r"part 1 ended without an answer \(exit code -9\)"
            ):
                replay_parallel(
                    reader, [engine.engine], [engine.texts], registry, plan(registry, 2)
                )
        finally:
            killer.join()
    assert killed
    assert not _parts_of(os.getpid())  # nothing left behind


def test_a_script_without_a_main_guard_on_stdin_replays_in_parts(fleet: Path) -> None:
    """Nothing of the caller's __main__ runs again in a part (multiprocessing's spawn would)."""
    script = (
        "from pathlib import Path\n"
        "from replay.report import encode_report\n"
        "from replay.session import ReplayOptions, run_replay\n"
        f"o = run_replay(ReplayOptions(Path({str(fleet)!r}), jobs=2))\n"
        "print('REPORT', len(encode_report(o.report)))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-"],
        check=False,
        input=script,
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["REPORT", str(len(report_bytes(fleet, 1)))]


def test_a_recording_still_growing_is_replayed_as_it_was_when_opened(
    fleet: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "growing.gz"
    copy.write_bytes(fleet.read_bytes())
    one = report_bytes(copy, 1)
    ghost = DataMessage("gw-x", "ghost", 1, T0, values={"temperature_c": 99.0})
    line = b'{"rt":%f,"topic":"ga/v1/gw-x/dev/ghost/data","payload":%s}\n' % (T0, encode(ghost))
    engine = load_engine(None)
    with RecordingReader(copy, threaded=False) as reader:
        registry = load_registry(reader, None)
        with copy.open("ab") as f:  # the recorder writes on: a part opens a bigger file
            f.write(gzip.compress(line))
        run = replay_parallel(reader, [engine.engine], [engine.texts], registry, plan(registry, 2))
    assert run.stats.unknown_device == 0
    assert len(run.steps[0]) == len(json.loads(one)["transitions"])


def test_a_recording_changed_under_the_replay_fails_it(fleet: Path, tmp_path: Path) -> None:
    copy = tmp_path / "changed.gz"
    copy.write_bytes(fleet.read_bytes())
    engine = load_engine(None)
    with RecordingReader(copy, threaded=False) as reader:  # has read its first block
        registry = load_registry(reader, None)
        with copy.open("r+b") as f:
            f.seek(100_000)
            f.write(bytes([f.read(1)[0] ^ 0xFF]))
        with pytest.raises(ReplayError, match="the file changed while it was replayed"):
            replay_parallel(reader, [engine.engine], [engine.texts], registry, plan(registry, 2))


def test_cli_jobs_option(fleet: Path, tmp_path: Path) -> None:
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"r{jobs}.json"
        args = ["replay", str(fleet), "--jobs", jobs, "--report", str(out), "--no-progress"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    bad = runner.invoke(app, ["replay", str(fleet), "--jobs", "0"])
    assert bad.exit_code == 2
    assert "--jobs" in bad.output
