"""The recording file: round trip, byte-exact payloads, and damaged files."""

from __future__ import annotations

import gzip
from pathlib import Path

import msgspec
import pytest

from replay.errors import RecordingError
from replay.reader import RecordingReader
from replay.recording import (
    FORMAT,
    RecordingWriter,
    entry_line,
    header_devices,
    make_header,
    write_recording,
)
from rules import DeviceInfo
from wire import DataMessage, GatewayStatus, encode
from wire.topics import data_topic, status_topic

DEVICES = [
    DeviceInfo("smk-1", "gw-1", "smoke", "grid-1", "b-1", "comm-1", 60.0),
    DeviceInfo("fld-1", "gw-1", "flood"),
]


def _messages(n: int) -> list[tuple[float, str, bytes, bool]]:
    out = [(100.0, status_topic("gw-1"), encode(GatewayStatus("gw-1", "online", 99.0)), True)]
    for seq in range(1, n + 1):
        msg = DataMessage("gw-1", "smk-1", seq, 100.0 + seq, values={"temperature_c": 20.5})
        out.append((100.0 + seq + 0.25, data_topic("gw-1", "smk-1"), encode(msg), False))
    return out


def _read(path: Path) -> tuple[RecordingReader, list[tuple[float, str, bytes, bool]]]:
    reader = RecordingReader(path)
    entries = [(e.rt, e.topic, e.payload_bytes(), e.retain) for e in reader.entries()]
    reader.close()
    return reader, entries


def test_round_trip_keeps_every_byte(tmp_path: Path) -> None:
    odd = [
        (200.0, "ga/v1/gw-1/status", b"", True),  # a retained clear
        (201.0, "ga/v1/gw-1/dev/x/data", b"not json\n\x00\xff", False),
        (202.0, 'ga/v1/gw-"1"/weird', b' {"spaced": 1} ', False),
        (203.0, "ga/v1/gw-1/dev/x/data", b'{"a":\t[1, 2]}', False),
    ]
    messages = _messages(50) + odd
    path = tmp_path / "r.jsonl.gz"
    assert write_recording(path, make_header("mqtt://h:1", 100.0, DEVICES), messages) == 55
    reader, entries = _read(path)
    assert entries == messages
    assert reader.header.format == FORMAT and reader.header.broker == "mqtt://h:1"
    assert header_devices(reader.header, "r") == DEVICES
    assert reader.stats.bad_lines == 0 and not reader.stats.truncated
    assert len(reader.stats.sha256) == 64


def test_payload_is_embedded_as_json_not_as_a_string(tmp_path: Path) -> None:
    payload = encode(DataMessage("gw-1", "smk-1", 1, 1.0, values={"alarm": True}))
    line = entry_line(1.5, data_topic("gw-1", "smk-1"), payload)
    assert b'"payload":' + payload + b"}" in line and line.endswith(b"\n")


def test_devices_as_a_csv_string_in_the_header(tmp_path: Path) -> None:
    path = tmp_path / "r.gz"
    csv_text = "device,gateway,type\nsmk-9,gw-9,smoke\n"
    header = msgspec.structs.replace(make_header("mqtt://h:1", 1.0), devices=csv_text)
    write_recording(path, header, [])
    reader, _ = _read(path)
    assert header_devices(reader.header, "r") == [DeviceInfo("smk-9", "gw-9", "smoke")]


def test_bad_devices_in_the_header_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "r.gz"
    header = make_header("mqtt://h:1", 1.0, [DeviceInfo("smk-1", "gw-1", "toaster")])
    write_recording(path, header, [])
    reader, _ = _read(path)
    with pytest.raises(RecordingError, match="toaster"):
        header_devices(reader.header, "r")


def test_a_killed_recorder_leaves_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "killed.gz"
    writer = RecordingWriter(path, make_header("mqtt://h:1", 1.0))
    for rt, topic, payload, retain in _messages(20):
        writer.write(rt, topic, payload, retain)
    writer.flush()  # what the recorder does every second; then it is killed (never closed):
    killed = tmp_path / "as-left.gz"
    killed.write_bytes(path.read_bytes())  # the bytes a kill -9 would leave behind
    writer.close()
    reader, entries = _read(killed)
    assert len(entries) == 21
    assert reader.stats.truncated
    assert any("without a gzip trailer" in w for w in reader.stats.warnings())


def test_truncated_last_line_and_garbage_lines_are_counted_with_line_numbers(
    tmp_path: Path,
) -> None:
    good = [entry_line(rt, t, p, r) for rt, t, p, r in _messages(5)]
    header = b'{"format":"gridalarm-recording","version":1,"schema":1,"start":1,"broker":"x"}\n'
    body = header + b"".join(good[:3]) + b"garbage here\n" + b"\n" + b"".join(good[3:])
    body += good[0][:25]  # cut mid-line
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(body))
    reader, entries = _read(path)
    assert len(entries) == 6
    assert reader.stats.bad_lines == 2
    assert [n for n, _ in reader.stats.samples] == [5, 10]
    assert "truncated last line" in reader.stats.samples[1][1]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"plain text, not gzip\n", "not a gzip file"),
        (gzip.compress(b"hello\n"), "line 1 is not JSON"),
        (gzip.compress(b'{"format":"other"}\n'), "not a gridalarm-recording header"),
        (gzip.compress(b'{"format":"gridalarm-recording","version":9}\n'), "newer than"),
        (gzip.compress(b'{"format":"gridalarm-recording","version":1}\n'), "bad header"),
        (b"", "not a gzip file"),
    ],
)
def test_bad_files_raise_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.gz"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=message):
        RecordingReader(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="cannot open"):
        RecordingReader(tmp_path / "nope.gz")


def test_corrupt_gzip_stops_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "r.gz"
    write_recording(path, make_header("mqtt://h:1", 1.0), _messages(30_000))
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    reader, entries = _read(path)
    assert 0 < len(entries) < 30_001
    assert "corrupt gzip data" in reader.stats.damaged
    assert reader.stats.warnings()
