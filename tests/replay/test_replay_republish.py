"""--to-broker: re-publishing a recording with its pacing scaled by --speed."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from typer.testing import CliRunner

from gridalarm.brokers import Mosquitto, free_port
from replay.cli import replay_cmd
from replay.recording import make_header, write_recording
from tests.support import Recorder, wait_until
from wire import DataMessage, GatewayStatus, encode
from wire.topics import data_topic, status_topic

app = typer.Typer()
app.command("replay")(replay_cmd)
app.command("other")(lambda: None)
runner = CliRunner()
SPAN_S = 4.0
N = 41


def _recording(path: Path) -> list[tuple[str, bytes]]:
    rows = [(1000.0, status_topic("gw-1"), encode(GatewayStatus("gw-1", "online", 999.0)), True)]
    for i in range(1, N):
        m = DataMessage("gw-1", "smk-1", i, 1000.0 + i * SPAN_S / (N - 1), values={"x": i})
        rows.append((m.ts, data_topic("gw-1", "smk-1"), encode(m), False))
    write_recording(path, make_header("mqtt://orig:1883", 1000.0), rows)
    return [(t, p) for _, t, p, _ in rows]


def test_speed_10_keeps_scaled_pacing_and_delivers_everything(
    broker: Mosquitto, tmp_path: Path
) -> None:
    sent = _recording(tmp_path / "r.gz")
    sub = Recorder(broker.port, "ga/v1/#", client_id="test-republish-sub")
    try:
        started = time.monotonic()
        result = runner.invoke(app, ["replay", str(tmp_path / "r.gz"), "--to-broker", broker.url,
                                     "--speed", "10", "--no-progress"])  # fmt: skip
        elapsed = time.monotonic() - started
        assert result.exit_code == 0, result.output
        assert elapsed >= SPAN_S / 10 * 0.95, "paced at a tenth of the recorded span"
        wait_until(lambda: len(sub.snapshot()) >= N, 10, "every message arrives")
        got = sub.snapshot()
    finally:
        sub.close()
    assert [(t, p) for t, p, _ in got] == sent  # all of them, in order, byte for byte


def test_speed_max_is_not_paced(broker: Mosquitto, tmp_path: Path) -> None:
    _recording(tmp_path / "r.gz")
    started = time.monotonic()
    result = runner.invoke(app, ["replay", str(tmp_path / "r.gz"), "--to-broker", broker.url,
                                 "--speed", "max", "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < SPAN_S


def test_unreachable_broker_exits_3(tmp_path: Path) -> None:
    _recording(tmp_path / "r.gz")
    url = f"mqtt://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["replay", str(tmp_path / "r.gz"), "--to-broker", url])
    assert result.exit_code == 3, result.output
