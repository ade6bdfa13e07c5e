"""Device lists as CSV (``device,gateway,type,grid,building,community,heartbeat_s``).

Used to import a registry, to embed one in a recording, and by replay. Pure text in, text out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from rules.devices import DeviceInfo
from wire.yamlconf import ConfigError, ConfigIssue

COLUMNS = ("device", "gateway", "type", "grid", "building", "community", "heartbeat_s")
TYPES = ("smoke", "ebike", "manhole", "flood")


def read_devices_csv(text: str, filename: str) -> list[DeviceInfo]:
    """Parse a device CSV; raise ConfigError naming file, line and column for every bad row."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS[:3] if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError([ConfigIssue(filename, 1, ",".join(missing), "required column missing")])
    devices, issues = [], []
    for row in reader:
        line = reader.line_num
        try:
            devices.append(_device(row))
        except ValueError as err:
            column, _, message = str(err).partition(": ")
            issues.append(ConfigIssue(filename, line, column, message))
    if issues:
        raise ConfigError(issues)
    return devices


def _device(row: dict[str, str]) -> DeviceInfo:
    if not row.get("device"):
        raise ValueError("device: empty")
    if row.get("type") not in TYPES:
        raise ValueError(f"type: {row.get('type')!r} is not one of {', '.join(TYPES)}")
    try:
        heartbeat = float(row.get("heartbeat_s") or 60)
    except ValueError:
        raise ValueError(f"heartbeat_s: {row.get('heartbeat_s')!r} is not a number") from None
    return DeviceInfo(
        device=row["device"],
        gateway=row.get("gateway") or "",
        type=row["type"],
        grid=row.get("grid") or "",
        building=row.get("building") or "",
        community=row.get("community") or "",
        heartbeat_s=heartbeat,
    )


def write_devices_csv(devices: Iterable[DeviceInfo]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for d in devices:
        writer.writerow(
            [d.device, d.gateway, d.type, d.grid, d.building, d.community, d.heartbeat_s]
        )
    return out.getvalue()
