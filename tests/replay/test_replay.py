"""Offline replay: ingest semantics, determinism, compare, reports and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from replay.cli import fleet_cmd, record_cmd, replay_cmd
from replay.fleet import FleetOptions, generate_fleet
from replay.recording import make_header, write_recording
from replay.session import ReplayOptions, run_replay
from rules import DeviceInfo, library_texts
from rules.devices_csv import write_devices_csv
from wire import DataMessage, DropRecord, EventMessage, GatewayStatus, encode
from wire.topics import data_topic, dropped_topic, event_topic, status_topic

T0 = 1_717_200_000.0
DEVICES = [
    DeviceInfo("fld-1", "gw-1", "flood", "grid-1", "", "comm-1", 600),
    DeviceInfo("fld-2", "gw-1", "flood", "grid-1", "", "comm-1", 600),
    DeviceInfo("smk-1", "gw-1", "smoke", "grid-1", "b-1", "comm-1", 600),
]
Msg = DataMessage | EventMessage | DropRecord | GatewayStatus

app = typer.Typer()
app.command("record")(record_cmd)
app.command("replay")(replay_cmd)
app.command("fleet")(fleet_cmd)
runner = CliRunner()


def _topic(m: Msg) -> str:
    if isinstance(m, GatewayStatus):
        return status_topic(m.gw)
    if isinstance(m, DropRecord):
        return dropped_topic(m.gw)
    return (data_topic if isinstance(m, DataMessage) else event_topic)(m.gw, m.dev)


def write_stream(path: Path, messages: list[tuple[float, Msg]], devices: list[DeviceInfo] | None
                 = DEVICES) -> Path:  # fmt: skip
    rows = [(rt, _topic(m), encode(m), isinstance(m, GatewayStatus)) for rt, m in messages]
    write_recording(path, make_header("mqtt://test:1883", T0, devices), rows)
    return path


def flood_and_smoke(path: Path) -> Path:
    """fld-1 rises 100 → 338 mm over 20 min; fld-2 sits at 160 mm; smk-1 at 35 °C."""
    out: list[tuple[float, Msg]] = [(T0, GatewayStatus("gw-1", "online", T0 - 5))]
    seq = 0
    for i in range(120):
        ts = T0 + 10 * i
        for dev, values in (("fld-1", {"level_mm": 100.0 + 2 * i}), ("fld-2", {"level_mm": 160.0}),
                            ("smk-1", {"temperature_c": 35.0})):  # fmt: skip
            seq += 1
            out.append((ts + 0.05, DataMessage("gw-1", dev, seq, ts, values=values)))
    return write_stream(path, out)


def rules_b(tmp_path: Path) -> Path:
    """The library with a later flood warning (200 mm) and an earlier heat warning (30 °C)."""
    texts = library_texts()
    flood = texts["flood.yaml"].replace("raise_at: 150\n        clear_at: 130",
                                        "raise_at: 200\n        clear_at: 180")  # fmt: skip
    smoke = texts["smoke.yaml"].replace("raise_at: 50\n        clear_at: 45",
                                        "raise_at: 30\n        clear_at: 25")  # fmt: skip
    assert flood != texts["flood.yaml"] and smoke != texts["smoke.yaml"]
    folder = tmp_path / "rules-b"
    folder.mkdir()
    for name, text in {**texts, "flood.yaml": flood, "smoke.yaml": smoke}.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def raises(report: dict[str, object], key: str = "transitions") -> list[tuple[str, str, float]]:
    return [(t["key"], t["severity"], t["ts"]) for t in report[key] if t["kind"] == "raise"]  # type: ignore[attr-defined, index]


def test_replay_raises_what_the_rules_say(tmp_path: Path) -> None:
    report = run_replay(ReplayOptions(flood_and_smoke(tmp_path / "s.gz"))).report
    got = raises(report)
    assert ("fld-2/flood-level", "warning", T0 + 30) in got
    fld1 = [r for r in got if r[0] == "fld-1/flood-level"]
    assert fld1 == [("fld-1/flood-level", "warning", T0 + 250 + 30)]  # 150 mm, then for 30 s
    assert not [r for r in got if r[0].startswith("smk-1")]
    assert report["stats"]["readings"] == 360
    assert report["summary"]["by_rule"]["flood-level"] == 2
    assert report["summary"]["time_to_raise_s"]["median"] == 30.0


def test_ingest_semantics_duplicates_unknown_devices_drop_records(tmp_path: Path) -> None:
    smoke = {"temperature_c": 20.0}
    msgs: list[tuple[float, Msg]] = [
        (T0 + 1, DataMessage("gw-1", "smk-1", 1, T0, values=smoke)),
        (T0 + 2, DataMessage("gw-1", "smk-1", 1, T0, values=smoke)),  # redelivery
        (T0 + 3, DataMessage("gw-1", "ghost-1", 2, T0 + 2, values=smoke)),  # not registered
        (T0 + 4, DataMessage("gw-2", "smk-1", 1, T0 + 3, values=smoke)),  # wrong gateway
        (T0 + 5, DropRecord("gw-1", 5, T0 + 4, [(3, 4)])),
        (T0 + 6, EventMessage("gw-1", "smk-1", 6, T0 + 5, "smoke_alarm", True)),
        (T0 + 7, DataMessage("gw-1", "smk-1", 4, T0 + 6, values=smoke)),  # named by the drop
    ]
    path = write_stream(tmp_path / "s.gz", msgs)
    stats = run_replay(ReplayOptions(path)).report["stats"]
    assert stats["duplicates"] == 2
    assert stats["unknown_device"] == 1 and stats["wrong_gateway"] == 1
    assert stats["unknown_devices"] == ["ghost-1", "smk-1"]
    assert stats["drop_records"] == 1 and stats["data"] == 1 and stats["events"] == 1


def test_same_file_and_rules_give_a_byte_identical_report(tmp_path: Path) -> None:
    path = tmp_path / "fleet.gz"
    generate_fleet(path, FleetOptions(devices=200, hours=24, fires=2, faults=2))
    reports = []
    for i in range(2):
        out = tmp_path / f"r{i}.json"
        result = runner.invoke(app, ["replay", str(path), "--report", str(out), "--no-progress"])
        assert result.exit_code == 0, result.output
        reports.append(out.read_bytes())
    assert reports[0] == reports[1]
    report = json.loads(reports[0])
    assert report["summary"]["by_rule"]["smoke-fire"] >= 2
    assert {"kind", "key", "severity", "ts"} <= set(report["transitions"][0])
    assert "Suspected fire" in result.output and "疑似火警" in result.output


def test_compare_reports_only_a_only_b_and_shifted(tmp_path: Path) -> None:
    path = flood_and_smoke(tmp_path / "s.gz")
    out = tmp_path / "cmp.json"
    result = runner.invoke(app, ["replay", str(path), "--compare", str(rules_b(tmp_path)),
                                 "--report", str(out), "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    compare = json.loads(out.read_bytes())["compare"]
    assert [a["key"] for a in compare["only_a"]] == ["fld-2/flood-level"]
    assert [b["key"] for b in compare["only_b"]] == ["smk-1/smoke-heat"]
    shifted = {s["key"]: s for s in compare["shifted"]}
    assert shifted["fld-1/flood-level"]["shift_s"] == 250.0  # 200 mm comes 25 readings after 150 mm
    assert compare["counts"]["only_a"] == 1 and compare["counts"]["only_b"] == 1
    assert "only in A 1, only in B 1" in result.output


def test_html_report_is_self_contained(tmp_path: Path) -> None:
    path = flood_and_smoke(tmp_path / "s.gz")
    page = tmp_path / "r.html"
    result = runner.invoke(app, ["replay", str(path), "--html", str(page), "--no-progress"])
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert "<style>" in text and "fld-2" in text and "路面积水" in text
    assert "<script" not in text and "http://" not in text and "https://" not in text


def test_registry_csv_overrides_the_header(tmp_path: Path) -> None:
    path = write_stream(
        tmp_path / "s.gz",
        [(T0, DataMessage("gw-1", "fld-1", 1, T0, values={"level_mm": 10.0}))],
        devices=None,
    )
    result = runner.invoke(app, ["replay", str(path), "--no-progress"])
    assert result.exit_code == 2 and "--registry" in result.output
    csv_path = tmp_path / "devices.csv"
    csv_path.write_text(write_devices_csv(DEVICES), encoding="utf-8")
    result = runner.invoke(app, ["replay", str(path), "--registry", str(csv_path), "--no-progress"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p.write_bytes(b"not a recording"), "not a gzip file"),
        (lambda p: None, "cannot open"),
    ],
)
def test_bad_input_exits_2_without_a_traceback(tmp_path: Path, setup: object, message: str) -> None:
    path = tmp_path / "bad.gz"
    setup(path)  # type: ignore[operator]
    result = runner.invoke(app, ["replay", str(path), "--no-progress"])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_bad_rules_exit_2_naming_the_file(tmp_path: Path) -> None:
    path = flood_and_smoke(tmp_path / "s.gz")
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "broken.yaml").write_text("rules:\n  - id: x\n    kind: nonsense\n", encoding="utf-8")
    result = runner.invoke(app, ["replay", str(path), "--rules", str(folder), "--no-progress"])
    assert result.exit_code == 2
    assert "broken.yaml" in result.output


def test_bad_speed_is_a_usage_error(tmp_path: Path) -> None:
    path = flood_and_smoke(tmp_path / "s.gz")
    result = runner.invoke(app, ["replay", str(path), "--speed", "fast"])
    assert result.exit_code == 2


def test_paced_replay_prints_the_timeline_as_it_goes(tmp_path: Path) -> None:
    msgs: list[tuple[float, Msg]] = [
        (T0 + i * 0.1, EventMessage("gw-1", "smk-1", i + 1, T0 + i * 0.1, "test_button", True))
        for i in range(5)
    ]
    path = write_stream(tmp_path / "s.gz", msgs)
    result = runner.invoke(app, ["replay", str(path), "--speed", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.output.count("Test button pressed") >= 1
