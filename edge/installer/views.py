"""Rich renderings of the installer tools' results (the CLI prints these)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from edge.decode import Value
from edge.installer.probe import GATEWAY, Reading
from edge.installer.scan import ScanResult
from edge.installer.statusfile import GatewayState
from edge.profile import ProfileSet

_QUALITY_STYLE = {"good": "green", "stale": "yellow", "comm_error": "red"}


def value_text(value: Value | None) -> Text:
    """A value for a person: yes/no for bits, up to six significant digits for numbers."""
    if value is None:
        return Text("—", style="dim")
    if isinstance(value, bool):
        return Text("yes", style="bold red") if value else Text("no")
    if isinstance(value, float):
        return Text(f"{value:.6g}")
    return Text(str(value))


def when(ts: Any, now: float | None = None) -> str:
    """'14:03:07 (3 s ago)' for a unix time, '—' for none."""
    if not isinstance(ts, int | float) or ts <= 0:
        return "—"
    ago = (time.time() if now is None else now) - ts
    return f"{time.strftime('%H:%M:%S', time.localtime(ts))} ({ago:.0f} s ago)"


def profiles_table(profiles: ProfileSet) -> Table:
    table = Table(title="Device profiles")
    for col in ("profile", "protocol", "identity", "measurements", "events"):
        table.add_column(col)
    for p in profiles:
        ident = f"0x{p.identify.value:04X} @ {p.identify.address}" if p.identify else "—"
        measurements = "\n".join(
            f"{m.name} [{m.unit}]" if m.unit else m.name for m in p.measurements
        )
        events = "\n".join(e.name for e in p.event_rules) or "—"
        table.add_row(Text(p.name, style="bold"), p.protocol, ident, measurements, events)
    return table


def profiles_json(profiles: ProfileSet) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "description": p.description,
            "protocol": p.protocol,
            "identify": p.identify.model_dump() if p.identify else None,
            "measurements": [{"name": m.name, "unit": m.unit} for m in p.measurements],
            "events": [e.name for e in p.event_rules],
        }
        for p in profiles
    ]


def scan_table(result: ScanResult) -> Table:
    table = Table(title=f"{len(result.found)} of {result.scanned} unit ids answered")
    for col in ("unit", "profile", "firmware", "identity", "note"):
        table.add_column(col)
    for f in result.found:
        ident = f"0x{f.registers[6]:04X}" if len(f.registers) > 6 else "—"
        profile = (
            Text(f.profile, style="bold green") if f.profile else Text("unknown", style="yellow")
        )
        fw = "—" if f.firmware is None else f"0x{f.firmware:04X}"
        if f.firmware_version:
            fw = f"{f.firmware_version} ({fw})"
        table.add_row(str(f.unit), profile, fw, ident, f.note)
    return table


def reading_table(reading: Reading) -> Table:
    who = (
        f"{reading.device} ({reading.profile.name}, unit {reading.unit})"
        if reading.device
        else (f"unit {reading.unit} ({reading.profile.name})")
    )
    source = "from the running gateway" if reading.source == GATEWAY else "read now"
    table = Table(
        title=f"{who} — {source}",
        caption=Text(reading.error, style="red") if reading.error else when(reading.ts),
    )
    for col, justify in (("measurement", "left"), ("value", "right"), ("unit", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name, value, unit in reading.rows():
        shown = Text("invalid", style="yellow") if name in reading.invalid else value_text(value)
        table.add_row(name, shown, unit)
    return table


def status_view(state: GatewayState) -> RenderableType:
    d = state.data
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    connected = (
        Text("connected", style="green")
        if d.get("connected")
        else Text("NOT connected", style="red")
    )
    summary.add_row(
        "gateway", f"{d.get('gateway')} (pid {d.get('pid')}, status {state.age_s:.1f} s old)"
    )
    summary.add_row("broker", Text.assemble(str(d.get("broker")), " — ", connected))
    summary.add_row(
        "outbox",
        f"{d.get('outbox_depth')} queued, last seq {d.get('last_seq')}, "
        f"{d.get('dropped_total')} dropped",
    )
    summary.add_row(
        "published",
        f"{d.get('published')} sent, {d.get('acked')} acked, last ack {when(d.get('last_ack_ts'))}",
    )
    return Group(
        summary, _buses_table(d.get("buses") or {}), _devices_table(d.get("devices") or {})
    )


def _buses_table(buses: dict[str, Any]) -> Table:
    names = sorted({k for b in buses.values() for k in (b.get("counters") or {})})
    table = Table(title="Buses")
    table.add_column("bus")
    table.add_column("open")
    for n in names:
        table.add_column(n, justify="right")
    for bus_id, b in sorted(buses.items()):
        counters = b.get("counters") or {}
        table.add_row(
            bus_id,
            "yes" if b.get("open") else Text("no", style="red"),
            *(str(counters.get(n, 0)) for n in names),
        )
    return table


def _devices_table(devices: dict[str, Any]) -> Table:
    table = Table(title="Devices")
    for col in ("device", "bus", "quality", "failures", "last error"):
        table.add_column(col)
    for dev_id, dv in sorted(devices.items()):
        quality = dv.get("quality") or "not read yet"
        table.add_row(
            dev_id,
            str(dv.get("bus")),
            Text(quality, style=_QUALITY_STYLE.get(quality, "dim")),
            str(dv.get("failures", 0)),
            str(dv.get("last_error") or ""),
        )
    return table
