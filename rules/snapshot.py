"""The engine's whole state as JSON-able data, and back.

Timers are not stored: every timer is a condition's (or a maintenance window's) ``due``, so
the heap is rebuilt from them. Infinite times are stored as null.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rules.alarms import Alarm
from rules.devices import DeviceInfo
from rules.errors import SnapshotError
from rules.state import NEG_INF, Device, MaintenanceEnd, build_conds
from wire.messages import Quality

if TYPE_CHECKING:
    from rules.engine import Engine

VERSION = 1
_COUNTERS = (
    "_n_data",
    "_n_events",
    "_n_status",
    "_n_readings",
    "_n_ooo",
    "_n_dup",
    "_n_transitions",
)


def _t(x: float) -> float | None:
    return None if x == NEG_INF else x


def _f(x: float | None) -> float:
    return NEG_INF if x is None else x


def dump(e: Engine) -> dict[str, Any]:
    return {**dump_base(e), "devices": dump_devices(e, e._devices)}


def dump_devices(e: Engine, ids: Iterable[str]) -> dict[str, Any]:
    """The per-device part of the state, for the devices named (unknown ids are skipped)."""
    devices = e._devices
    return {i: _dump_device(devices[i]) for i in ids if i in devices}


def dump_base(e: Engine) -> dict[str, Any]:
    """Everything but the devices: small (gateways, open alarms, maintenance, correlation)."""
    book = e._book
    return {
        "version": VERSION,
        "clock": _t(e._clock),
        "counters": [getattr(e, n) for n in _COUNTERS],
        "gateways": {
            gw.id: {
                "online": gw.online,
                "status_ts": gw.status_ts,
                "fresh_from": _t(gw.fresh_from),
                "conds": {c.key: c.dump() for c in gw.conds},
            }
            for gw in e._gateways.values()
        },
        "open": [a.dump() for a in book.open.values()],
        "maintenance": dict(book.maint),
        "groups": {k: [list(x) for x in v] for k, v in book.groups.items()},
    }


def _info(i: DeviceInfo) -> dict[str, Any]:
    # explicit, not dataclasses.asdict: that deep-copies and is the slowest part of a checkpoint
    return {
        "device": i.device,
        "gateway": i.gateway,
        "type": i.type,
        "grid": i.grid,
        "building": i.building,
        "community": i.community,
        "heartbeat_s": i.heartbeat_s,
    }


def _dump_device(dev: Device) -> dict[str, Any]:
    info = dev.info_state
    if info is None:  # a device's info only changes with a new Device (Engine._learn)
        info = dev.info_state = _info(dev.info)
    return {
        "info": info,
        "last_ts": _t(dev.last_ts),
        "last_values": dev.last_values,
        "last_q": None if dev.last_q is None else dev.last_q.value,
        "last_seen": _t(dev.last_seen),
        "attention": dev.attention,
        "conds": {c.key: c.dump() for c in dev.conds},
    }


def load(e: Engine, data: dict[str, Any]) -> None:
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise SnapshotError(f"not a version {VERSION} engine snapshot")
    try:
        _load(e, data)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise SnapshotError(f"snapshot does not fit: {err!r}") from err


def _load(e: Engine, data: dict[str, Any]) -> None:
    e._clock = _f(data["clock"])
    for name, value in zip(_COUNTERS, data["counters"], strict=True):
        setattr(e, name, value)
    for gw_id, g in data["gateways"].items():
        gw = e._gateway(gw_id)
        gw.online, gw.status_ts, gw.fresh_from = g["online"], g["status_ts"], _f(g["fresh_from"])
        for gc in gw.conds:
            _load_cond(gc, g["conds"].get(gc.key))
    for dev_id, d in data["devices"].items():
        info = DeviceInfo(**d["info"])
        gw = e._gateway(info.gateway)
        dev = e._devices[dev_id] = Device(dev_id, info, gw)
        gw.devices.add(dev_id)
        dev.last_ts, dev.last_seen = _f(d["last_ts"]), _f(d["last_seen"])
        dev.last_values = d["last_values"]
        dev.last_q = None if d["last_q"] is None else Quality(d["last_q"])
        dev.attention = d["attention"]
        build_conds(dev, e.ruleset.device_rules(info), {}, e._timed)
        for c in dev.conds:
            _load_cond(c, d["conds"].get(c.key))
    book = e._book
    book.open = {a[0]: Alarm.load(a) for a in data["open"]}
    book.maint = {k: float(v) for k, v in data["maintenance"].items()}
    book.groups = {k: [list(x) for x in v] for k, v in data["groups"].items()}
    heap: list[tuple[float, str]] = [(c.due, k) for k, c in e._timed.items() if c.due is not None]
    for dev_id, until in book.maint.items():
        end = MaintenanceEnd(dev_id, until)
        e._timed[end.key] = end
        heap.append((until, end.key))
    heapq.heapify(heap)
    e._heap = heap


def _load_cond(cond: Any, data: list[Any] | None) -> None:
    if data is None or data[0] != cond.rule.kind:
        return  # a rule that is new (or changed kind) since the snapshot starts afresh
    cond.load(data[1:])
    cond.level = min(cond.level, len(cond.rule.levels) - 1)
