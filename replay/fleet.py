"""A synthetic district as a recording: thousands of devices over a day, deterministic by seed.

The mix is 70% smoke detectors (two per building, so correlation can fire), 10% e-bike lift
blockers (one per building that has one), 15% manhole covers, 5% flood gauges; about 100
devices per gateway, two gateways per grid, ten per community. Devices report like the
gateway does (by exception beyond the profile's deadbands, plus a heartbeat), with daily
temperature, evening e-bike peaks and rain episodes lifting flood gauges and wells. Scripted
incidents: fires (every other one followed by the building's second detector within 120 s),
breakfast-smoke false alarms, test-button presses, devices that stop answering, displaced
manhole covers and a gateway outage whose backlog arrives late (receive time after event time).

Size: the gateway's own heartbeat is 60 s, but 10,000 devices × 1,440 heartbeats is 14M
messages (~120M readings): hours to generate and minutes to replay. The fleet's devices are
registered with a 600 s heartbeat instead (``heartbeat_s``, in the embedded registry too, so
deadman rules scale with it); a polled value is sampled every 300 s plus at every scripted
change. 10,000 devices × 24 h come to about 1.9M messages, ~15M readings.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from replay.fleet_models import (
    PROFILES,
    Model,
    Overrides,
    Report,
    Reporter,
    Values,
    Weather,
    ebike_detections,
    ebike_model,
    flood_model,
    manhole_model,
    smoke_model,
)
from replay.fleet_plan import Incident, plan_incidents
from replay.recording import RecordingWriter, make_header
from rules.devices import DeviceInfo
from wire import DataMessage, EventMessage, GatewayStatus, Quality, encode
from wire.topics import data_topic, event_topic, status_topic

DEFAULT_START = 1717171200.0  # 2024-06-01 00:00 Asia/Shanghai
WINDOW_S = 3600.0  # generated and sorted one hour at a time
MIX = (("smoke", 0.70), ("ebike", 0.10), ("manhole", 0.15), ("flood", 0.05))
PREFIX = {"smoke": "smk", "ebike": "ebk", "manhole": "mh", "flood": "fld"}


@dataclass(frozen=True, slots=True)
class FleetOptions:
    devices: int = 10_000
    hours: float = 24.0
    seed: int = 1
    start: float = DEFAULT_START
    heartbeat_s: float = 600.0
    sample_s: float = 300.0
    fires: int = 6
    false_alarms: int = 12
    tests: int = 30
    faults: int = 20
    outages: int = 1
    compresslevel: int = 1  # level 1: 3x faster than 6 here, for a ~25% bigger file

    @property
    def end(self) -> float:
        return self.start + self.hours * 3600


@dataclass
class FleetSummary:
    devices: int = 0
    gateways: int = 0
    messages: int = 0
    readings: int = 0
    incidents: list[Incident] = field(default_factory=list)


def layout(n: int, heartbeat_s: float = 600.0) -> list[DeviceInfo]:
    """The district's registry: ids, gateways, grids, buildings, communities."""
    counts = {t: math.floor(n * share) for t, share in MIX}
    counts["smoke"] += n - sum(counts.values())
    gateways = max(1, math.ceil(n / 100))
    width = len(str(gateways - 1))
    smoke_gw = [i * gateways // max(1, counts["smoke"]) for i in range(counts["smoke"])]
    buildings = max(1, (counts["smoke"] + 1) // 2)
    out: list[DeviceInfo] = []

    def add(kind: str, i: int, gw: int, building: str) -> None:
        out.append(
            DeviceInfo(
                device=f"{PREFIX[kind]}-{i:05d}",
                gateway=f"gw-{gw:0{width}d}",
                type=kind,
                grid=f"grid-{gw // 2:0{width}d}",
                building=building,
                community=f"comm-{gw // 10:0{width}d}",
                heartbeat_s=heartbeat_s,
            )
        )

    for i, gw in enumerate(smoke_gw):
        add("smoke", i, gw, f"b-{i // 2:05d}")
    for i in range(counts["ebike"]):
        b = i * buildings // max(1, counts["ebike"])
        add("ebike", i, smoke_gw[min(2 * b, len(smoke_gw) - 1)] if smoke_gw else 0, f"b-{b:05d}")
    for kind in ("manhole", "flood"):
        for i in range(counts[kind]):
            add(kind, i, i * gateways // counts[kind], "")
    return out


class _Device:
    """One device's model, its scripted overrides, and the gateway-like reporter."""

    def __init__(
        self, model: Model, overrides: Overrides, reporter: Reporter, first: float, sample_s: float
    ) -> None:
        self.model, self.overrides, self.reporter = model, overrides, reporter
        self.next_sample, self.sample_s = first, sample_s
        self.frames = overrides.times()
        self.frame_i = 0

    def run(self, end: float, out: list[Report]) -> None:
        """Poll at every sample and every scripted change before *end*."""
        frames, n = self.frames, len(self.frames)
        while True:
            tf = frames[self.frame_i] if self.frame_i < n else math.inf
            t = min(self.next_sample, tf)
            if t >= end:
                return
            if tf == t:
                self.frame_i += 1
            if self.next_sample == t:
                self.next_sample = round(t + self.sample_s, 3)
            base = self.model(t)
            values: Values | None = base
            if self.frames:
                active, override = self.overrides.at(t)
                if active:
                    values = None if override is None else {**base, **override}
            self.reporter.poll(t, values, out)


def _build(
    devices: list[DeviceInfo],
    opts: FleetOptions,
    rng: random.Random,
    overrides: dict[str, Overrides],
) -> list[_Device]:
    weather = Weather(_rain(rng, opts))
    wetness = {c: rng.uniform(0.6, 1.4) for c in sorted({d.community for d in devices})}
    out = []
    for idx, d in enumerate(devices):
        drng = random.Random(opts.seed * 1_000_003 + idx)
        model: Model
        if d.type == "smoke":
            model = smoke_model(drng)
        elif d.type == "ebike":
            seen = ebike_detections(drng, opts.start, opts.end)
            model = ebike_model(seen, drng.randrange(5000), int(opts.start - 3600))
            if d.device not in overrides:  # the door is held while the e-bike is in the car
                overrides[d.device] = Overrides(_presence(seen, drng))
        elif d.type == "manhole":
            model = manhole_model(drng, weather, wetness[d.community])
        else:
            model = flood_model(drng, weather, wetness[d.community])
        first = round(opts.start + drng.uniform(0, opts.sample_s), 3)
        initial = model(first - opts.sample_s)
        last = first - opts.sample_s * drng.randint(
            1, max(1, round(opts.heartbeat_s / opts.sample_s))
        )
        reporter = Reporter(PROFILES[d.type], opts.heartbeat_s, initial, last)
        out.append(
            _Device(model, overrides.get(d.device, Overrides()), reporter, first, opts.sample_s)
        )
    return out


def _presence(seen: list[float], rng: random.Random) -> list[tuple[float, Values | None]]:
    held: Values = {"ebike_present": True, "door_held": True}
    frames: list[tuple[float, Values | None]] = []
    for t in seen:
        frames += [(t, held), (round(t + rng.uniform(10, 60), 3), {})]
    frames.sort(key=lambda f: f[0])
    return frames


def _rain(rng: random.Random, opts: FleetOptions) -> tuple[tuple[float, float, float], ...]:
    """A moderate night shower and a heavy afternoon storm (fractions of the span)."""
    span = opts.end - opts.start
    out = []
    for a, b, peak in ((0.12, 0.20, 18.0), (0.58, 0.70, 60.0)):
        jitter = rng.uniform(-0.02, 0.02)
        out.append(
            (
                opts.start + (a + jitter) * span,
                opts.start + (b + jitter) * span,
                peak * rng.uniform(0.8, 1.2),
            )
        )
    return tuple(out)


def generate_fleet(
    path: Path, opts: FleetOptions, progress: Callable[[float], None] | None = None
) -> FleetSummary:
    """Write a synthetic recording of the district to *path*."""
    rng = random.Random(opts.seed)
    devices = layout(opts.devices, opts.heartbeat_s)
    overrides, incidents, outages = plan_incidents(rng, devices, opts)
    fleet = _build(devices, opts, rng, overrides)
    summary = FleetSummary(len(devices), len({d.gateway for d in devices}), 0, 0, incidents)
    source = (
        f"fleet seed={opts.seed} devices={opts.devices} hours={opts.hours:g} "
        f"heartbeat_s={opts.heartbeat_s:g}"
    )
    header = make_header("synthetic://fleet", opts.start, devices, source)
    with RecordingWriter(path, header, opts.compresslevel) as writer:
        emitter = _Emitter(devices, outages, random.Random(opts.seed + 7), writer, summary)
        emitter.statuses(opts.start)
        t = opts.start
        while t < opts.end:
            end = min(t + WINDOW_S, opts.end)
            batch: list[tuple[float, int, int, Report]] = []
            for idx, dev in enumerate(fleet):
                reports: list[Report] = []
                dev.run(end, reports)
                batch.extend((r.ts, idx, k, r) for k, r in enumerate(reports))
            emitter.window(batch, end)
            t = end
            if progress:
                progress((t - opts.start) / (opts.end - opts.start))
        emitter.window([], math.inf)
    return summary


class _Emitter:
    """Numbers messages per gateway in event-time order and writes them in arrival order."""

    def __init__(
        self,
        devices: list[DeviceInfo],
        outages: dict[str, tuple[float, float]],
        rng: random.Random,
        writer: RecordingWriter,
        summary: FleetSummary,
    ) -> None:
        self._devices, self._outages, self._rng = devices, outages, rng
        self._writer, self._summary = writer, summary
        self._seq: dict[str, int] = {}
        self._last_rt: dict[str, float] = {}
        self._pending: list[tuple[float, str, int, bytes]] = []
        self._topics = [
            (data_topic(d.gateway, d.device).encode(), event_topic(d.gateway, d.device).encode())
            for d in devices
        ]

    def statuses(self, start: float) -> None:
        """Retained birth messages, as a recorder subscribing at *start* receives them."""
        counts: dict[str, int] = {}
        for d in self._devices:
            counts[d.gateway] = counts.get(d.gateway, 0) + 1
        for i, (gw, n) in enumerate(sorted(counts.items())):
            up = round(start - self._rng.uniform(3600, 30 * 86400), 3)
            self._status(
                round(start + 0.001 * (i + 1), 3), GatewayStatus(gw, "online", up, "fleet", n)
            )
        for gw, (down, back) in sorted(self._outages.items()):
            # the broker publishes the last will after 1.5 keep-alives of silence
            self._status(round(down + 45, 3), GatewayStatus(gw, "offline", round(down + 45, 3)))
            self._status(
                round(back, 3), GatewayStatus(gw, "online", round(back, 3), "fleet", counts[gw])
            )

    def _status(self, rt: float, status: GatewayStatus) -> None:
        line = b'{"rt":%r,"topic":"%s","payload":%s,"retain":true}\n' % (
            rt,
            status_topic(status.gw).encode(),
            encode(status),
        )
        self._pending.append((rt, status.gw, 0, line))

    def window(self, batch: list[tuple[float, int, int, Report]], end: float) -> None:
        batch.sort(key=lambda x: (x[0], x[1], x[2]))
        for ts, idx, _k, report in batch:
            self._message(idx, report, ts)
        self._pending.sort(key=lambda p: (p[0], p[1], p[2]))
        cut = 0
        for cut, item in enumerate(self._pending):  # noqa: B007 - the index is the result
            if item[0] >= end:
                break
        else:
            cut = len(self._pending)
        for item in self._pending[:cut]:
            self._writer.write_line(item[3])
        del self._pending[:cut]

    def _message(self, idx: int, report: Report, ts: float) -> None:
        d = self._devices[idx]
        gw, dev = d.gateway, d.device
        seq = self._seq[gw] = self._seq.get(gw, 0) + 1
        ts = round(ts, 3)
        if report.event:
            msg: DataMessage | EventMessage = EventMessage(
                gw, dev, seq, ts, report.event, report.active, values=report.values
            )
            topic = self._topics[idx][1]
        elif report.comm_error:
            msg, topic = DataMessage(gw, dev, seq, ts, Quality.COMM_ERROR), self._topics[idx][0]
        else:
            msg, topic = DataMessage(gw, dev, seq, ts, values=report.values), self._topics[idx][0]
            self._summary.readings += len(report.values)
        self._summary.messages += 1
        rt = self._receive_time(gw, ts)
        line = b'{"rt":%r,"topic":"%s","payload":%s}\n' % (rt, topic, encode(msg))
        self._pending.append((rt, gw, seq, line))

    def _receive_time(self, gw: str, ts: float) -> float:
        last = self._last_rt.get(gw, 0.0)
        outage = self._outages.get(gw)
        if outage and outage[0] <= ts < outage[1]:
            rt = round(max(outage[1] + 0.5, last + 0.002), 3)  # the backlog drains on return
        else:
            rt = round(max(ts + 0.02 + self._rng.expovariate(20), last + 0.001), 3)
        self._last_rt[gw] = rt
        return rt
