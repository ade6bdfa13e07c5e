"""A city's load on real brokers: a synthetic district of live fleet gateways at a chosen rate.

The district is the replay fleet's (``replay.fleet.layout``: the device mix, two detectors per
building, two gateways per grid, ten per community) dealt out over the number of gateways
asked for. Every device reports at every poll (its reporter's heartbeat is shorter than the
poll), so the rate is set by the poll interval: ``poll_s = devices / rate``. Scripted alarm
incidents (smoke rising past the detector's threshold until it alarms; water rising past the
flood level) are spread over the run, each on its own device, so a cloud raises alarms.

The run polls for ``duration_s``, lets every gateway send what it still holds, and ends;
``fleet.json`` then says each gateway's last sequence number, for ``fleetcheck``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from gridalarm.fleet import LiveFleet
from replay.fleet import layout
from replay.fleet_models import Overrides, Values
from replay.fleet_plan import Incident
from rules.devices import DeviceInfo
from rules.devices_csv import write_devices_csv

FINISH_S = 30.0  # after the last poll, how long the gateways may take to send what they hold
FINISH_SHARE = 0.25  # ... or this share of the run, if longer: a broker that fell behind
# (a node killed, a loaded cluster) leaves more to send, and a cut run cannot be checked
RISE_S = 5.0  # smoke (water) builds up this long before the detector (gauge) alarms
FLOOD_HOLD_S = 60.0  # the flood rules want the level held for 30 s and two polls to see it
INCIDENT_S = 600.0  # an incident lasts this long (past a short run's end: it is still burning)


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """What ``gridalarm sim fleet --live`` was asked for."""

    brokers: list[tuple[str, int]]
    seq_file: Path
    devices: int = 20_000
    gateways: int = 200
    rate: float = 1000.0  # messages per second, all gateways together
    duration_s: float = 60.0
    alarms: int = 0
    heartbeat_s: float = 600.0  # registered in the devices CSV: the cloud's deadman scales with it
    seed: int = 1

    @property
    def poll_s(self) -> float:
        return self.devices / self.rate


@dataclass
class LoadResult:
    messages: int
    seqs: dict[str, int]
    elapsed_s: float
    finished: bool  # False: the gateways still held messages when the run had to end


def district(devices: int, gateways: int, heartbeat_s: float) -> list[DeviceInfo]:
    """*devices* devices on *gateways* gateways: the replay fleet's layout, its buildings kept
    together, dealt out in equal runs; two gateways per grid, ten per community."""
    base = layout(devices, heartbeat_s)
    order = sorted(range(len(base)), key=lambda i: (base[i].gateway, i))
    width = len(str(gateways - 1))
    out = []
    for rank, i in enumerate(order):
        gw = rank * gateways // len(base)
        out.append(
            replace(
                base[i],
                gateway=f"gw-{gw:0{width}d}",
                grid=f"grid-{gw // 2:0{width}d}",
                community=f"comm-{gw // 10:0{width}d}",
            )
        )
    return out


def plan_alarms(
    devices: list[DeviceInfo], count: int, start: float, opts: LoadOptions
) -> tuple[dict[str, Overrides], list[Incident]]:
    """*count* incidents, each on its own device, spread over the run so that each is polled
    in alarm before it ends; one in four a flood where a flood gauge and time allow."""
    rng = random.Random(opts.seed)
    pools = {k: [d for d in devices if d.type == k] for k in ("smoke", "flood")}
    for pool in pools.values():
        rng.shuffle(pool)
    # the last alarm must still be polled twice before the run stops polling
    span = max(opts.duration_s - 2 * opts.poll_s, opts.duration_s / 2)
    overrides: dict[str, Overrides] = {}
    incidents: list[Incident] = []
    for n in range(count):
        t0 = round(start + span * (n + 0.5) / count, 3)
        room = start + opts.duration_s - t0
        flood = n % 4 == 3 and bool(pools["flood"]) and room >= FLOOD_HOLD_S + 2 * opts.poll_s
        kind = "flood" if flood else "fire"
        pool = pools["flood" if flood else "smoke"]
        if not pool:
            break
        d = pool.pop()
        frames = _flood(t0, rng) if flood else _fire(t0, rng)
        overrides[d.device] = Overrides(frames)
        incidents.append(Incident(kind, d.device, t0, frames[-1][0]))  # t0: the alarm
    return overrides, incidents


def _fire(t0: float, rng: random.Random) -> list[tuple[float, Values | None]]:
    smoke = round(rng.uniform(4.5, 9.0), 2)  # past the detector's 3 %/m alarm point
    return [
        (t0 - RISE_S, {"obscuration_pct_per_m": round(smoke / 4, 2)}),
        # the temperature stays the room's: a jump of it would raise heat alarms by chance
        (t0, {"alarm": True, "obscuration_pct_per_m": smoke}),
        (t0 + INCIDENT_S, {}),
    ]


def _flood(t0: float, rng: random.Random) -> list[tuple[float, Values | None]]:
    level = round(rng.uniform(320, 420), 1)  # past the 300 mm flood level
    return [
        (t0 - RISE_S, {"level_mm": round(level / 2, 1), "rain_mm_h": 40.0}),
        (t0, {"level_mm": level, "level_alarm": True, "rain_mm_h": 60.0}),
        (t0 + INCIDENT_S, {}),
    ]


def write_district(devices: list[DeviceInfo], path: Path) -> None:
    """The devices CSV a cloud registers the district from."""
    path.write_text(write_devices_csv(devices), encoding="utf-8")


def write_incidents(incidents: list[Incident], devices: list[DeviceInfo], path: Path) -> None:
    """The scripted incidents as JSON, each with its device's gateway."""
    gateway = {d.device: d.gateway for d in devices}
    rows = [{**asdict(i), "gateway": gateway[i.target]} for i in incidents]
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")


async def run_load(
    opts: LoadOptions, devices: list[DeviceInfo], overrides: dict[str, Overrides], start: float
) -> LoadResult:
    """Run the district against the brokers from *start* (a ``time.time()``, the one the
    incidents were planned from) for the run's duration; the sequences reached are saved to
    ``opts.seq_file`` whatever happens."""
    # every poll reports every device: the reporter's heartbeat is below the poll interval
    fleet_devices = [replace(d, heartbeat_s=opts.poll_s / 2) for d in devices]
    (host, port), *cluster = opts.brokers
    fleet = LiveFleet(
        fleet_devices, host, port, opts.seq_file,
        poll_s=opts.poll_s, cluster=cluster, incidents=overrides,
    )  # fmt: skip
    begun = time.monotonic()
    finished = True
    try:
        async with asyncio.timeout(opts.duration_s + max(FINISH_S, opts.duration_s * FINISH_SHARE)):
            await fleet.run(until=start + opts.duration_s)
    except TimeoutError:
        finished = False
    seqs = {g.id: g.seq for g in fleet.gateways.values()}
    return LoadResult(fleet.published, seqs, time.monotonic() - begun, finished)
