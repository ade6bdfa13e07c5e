"""Live view of the wire traffic for the demo: a Rich table per device plus an event log."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cloud.lifecycle.rule_alarms import AlarmChange
from wire import (
    DataMessage,
    DropRecord,
    EventMessage,
    WireError,
    decode_sequenced,
    decode_status,
    parse_topic,
)
from wire.topics import TopicKind, gateway_filter

TABLE_ROWS = 12  # the demo gateway's devices (and the first fleet devices with events)
REFRESH_S = 0.25


@dataclass
class DeviceRow:
    quality: str = ""
    seq: int = 0
    values: dict[str, Any] = field(default_factory=dict)
    last_event: str = ""
    messages: int = 0


@dataclass
class TrafficView:
    """What the demo has seen on the broker."""

    devices: dict[str, DeviceRow] = field(default_factory=dict)
    log: deque[str] = field(default_factory=lambda: deque(maxlen=12))
    gateways: dict[str, str] = field(default_factory=dict)
    messages: int = 0
    bad: int = 0
    printer: Callable[[str], None] | None = None  # plain mode: print alarm lines as they come
    # the fleet's gateways: counted, not shown line by line (a status only when it changes)
    quiet_gateways: set[str] = field(default_factory=set)
    quiet_messages: int = 0

    def add(self, topic: str, payload: bytes) -> str | None:
        """Take one message; return a log line for it (events, status, drops) or None."""
        self.messages += 1
        try:
            t = parse_topic(topic)
            if t.kind is TopicKind.STATUS:
                st = decode_status(t, payload)
                before = self.gateways.get(st.gw)
                self.gateways[st.gw] = st.state
                if st.gw in self.quiet_gateways and before in (None, st.state):
                    return None
                return self._log(
                    f"gateway {st.gw} {st.state} 网关{'上线' if st.state == 'online' else '离线'}"
                )
            if t.kind in (TopicKind.COMMAND, TopicKind.REPLY):
                return self._log(f"{t.kind.value} {t.command_id}")
            msg = decode_sequenced(t, payload)
        except WireError as err:
            self.bad += 1
            return self._log(f"bad message on {topic}: {err}")
        return self._sequenced(msg)

    def _sequenced(self, msg: DataMessage | EventMessage | DropRecord) -> str | None:
        if isinstance(msg, DropRecord):
            return self._log(
                f"{msg.gw} dropped {msg.dropped_count()} telemetry messages (outbox full)"
            )
        if msg.gw in self.quiet_gateways and isinstance(msg, DataMessage):
            self.quiet_messages += 1
            return None
        row = self.devices.setdefault(msg.dev, DeviceRow())
        quality_was = row.quality
        row.seq, row.quality, row.messages = msg.seq, msg.q.value, row.messages + 1
        if isinstance(msg, DataMessage):
            row.values = dict(msg.values)
            if row.messages > 1 and msg.q.value == quality_was:
                return None  # the readings are in the table; a line each would bury the alarms
            return f"data  {msg.dev:<10} seq {msg.seq:<6} {msg.q.value:<10} {_short(msg.values)}"
        state = {True: "ON", False: "off", None: "!"}[msg.active]
        row.last_event = f"{msg.event} {state}"
        return self._log(f"EVENT {msg.dev:<10} seq {msg.seq:<6} {msg.event} {state}")

    def alarms(self, changes: list[AlarmChange]) -> None:
        """Show the cloud's committed alarm transitions (zh and en)."""
        for c in changes:
            if c.kind in ("record", "suppressed"):
                continue
            self._log(
                f"ALARM {c.kind.upper():<9} {c.severity:<8} {c.device or c.gateway:<10} "
                f"{c.title_zh} / {c.title_en}"
            )
            if self.printer is not None:
                self.printer(self.log[-1])

    def notification(self, line: str) -> None:
        """A message the console channel 'sent' to a worker."""
        self._log(f"NOTIFY {line}")
        if self.printer is not None:
            self.printer(self.log[-1])

    def _log(self, line: str) -> str:
        self.log.append(f"{time.strftime('%H:%M:%S')} {line}")
        return line

    def render(self) -> Group:
        table = Table(
            title=f"gridalarm demo — {self.messages} messages, {self.bad} bad", expand=True
        )
        for col in ("device", "quality", "seq", "values", "last event"):
            table.add_column(col)
        for dev in sorted(self.devices)[:TABLE_ROWS]:
            r = self.devices[dev]
            style = "red" if r.quality != "good" else ""
            table.add_row(dev, r.quality, str(r.seq), _short(r.values), r.last_event, style=style)
        loud = {g: s for g, s in self.gateways.items() if g not in self.quiet_gateways}
        gws = ", ".join(f"{g}: {s}" for g, s in loud.items()) or "—"
        if self.quiet_gateways:
            online = sum(self.gateways.get(g) == "online" for g in self.quiet_gateways)
            gws += (
                f"; fleet: {online}/{len(self.quiet_gateways)} online, "
                f"{self.quiet_messages} messages"
            )
        return Group(
            table,
            # Text, not markup: message ids like [a1-s0-w-0017] are not styles
            Panel(Text("\n".join(self.log) or "(no events yet)"), title=f"events · gateways {gws}"),
        )


def _short(values: dict[str, Any]) -> str:
    parts = []
    for k, v in values.items():
        if isinstance(v, bool):
            if v:
                parts.append(k.upper())
        else:
            parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(parts)


async def watch_traffic(
    url_host: str, port: int, view: TrafficView, plain: bool, console: Console
) -> None:
    """Subscribe to every gateway's topics and show them until cancelled."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"gridalarm-demo-view-{time.monotonic_ns()}"
    )
    client.on_connect = lambda c, *_a: c.subscribe(gateway_filter(), qos=1)

    def on_message(_c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (m.topic, bytes(m.payload)))

    client.on_message = on_message
    await asyncio.to_thread(client.connect, url_host, port, 30)
    client.loop_start()
    try:
        if plain:
            view.printer = lambda line: console.print(
                line, markup=False, highlight=False, soft_wrap=True
            )
            while True:
                topic, payload = await queue.get()
                line = view.add(topic, payload)
                if line:
                    console.print(line, markup=False, highlight=False, soft_wrap=True)
        with Live(view.render(), console=console, refresh_per_second=4) as live:
            shown = 0.0
            while True:
                topic, payload = await queue.get()
                view.add(topic, payload)
                if (now := time.monotonic()) - shown >= REFRESH_S:  # rendering costs; 4 a second
                    live.update(view.render())
                    shown = now
    finally:
        client.disconnect()
        client.loop_stop()
