"""The evaluator: messages in, transitions out, driven only by the event time they carry.

Hot path (``on_data``): one dict lookup for the device (its effective rules are compiled once
and cached on it), one per measurement to find the conditions that read it, and a fast path
in each condition that only compares numbers while nothing changes. Timers live in one heap
of ``(due, key)`` entries checked lazily against the condition's current ``due``.
"""

from __future__ import annotations

import heapq
from typing import Any

from rules import snapshot as snap
from rules.alarms import AlarmBook
from rules.conds import Cond
from rules.devices import DeviceInfo
from rules.model import OpenAlarm, Transition
from rules.ruleset import RuleSet
from rules.state import NEG_INF, Device, Gateway, GatewayOffline, MaintenanceEnd, build_conds
from wire.messages import DataMessage, EventMessage, GatewayStatus, Quality

_GOOD = Quality.GOOD
_COMM_ERROR = Quality.COMM_ERROR


class Engine:
    """Evaluates one rule set over a stream of data, events and gateway statuses."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._devices: dict[str, Device] = {}
        self._gateways: dict[str, Gateway] = {}
        self._timed: dict[str, Cond | MaintenanceEnd] = {}
        self._heap: list[tuple[float, str]] = []
        self._book = AlarmBook(ruleset.correlated, self._building)
        self._clock = NEG_INF
        self._dirty: set[str] = set()  # devices whose state changed since snapshot_delta()
        self._n_data = self._n_events = self._n_status = 0
        self._n_readings = self._n_ooo = self._n_dup = self._n_transitions = 0

    # -- public API -------------------------------------------------------------------------

    def on_data(self, msg: DataMessage, device: DeviceInfo) -> list[Transition]:
        """Evaluate one data message of *device*."""
        self._n_data += 1
        dev_id = msg.dev
        dev = self._devices.get(dev_id)
        if dev is None or dev.info is not device:
            dev = self._resolve(dev_id, dev, device)
        self._dirty.add(dev_id)
        ts, last_ts = msg.ts, dev.last_ts
        if ts < last_ts:
            self._n_ooo += 1  # older than what decided the state: ignored
            return []
        values, q = msg.values, msg.q
        if ts == last_ts and values == dev.last_values and q is dev.last_q:
            self._n_dup += 1
            return []
        dev.last_ts, dev.last_values, dev.last_q = ts, values, q
        if ts > dev.last_seen:  # noqa: PLR1730 - no call to max() on the hottest path
            dev.last_seen = ts
        out = self._book.out = []
        if dev.attention:
            dev.heard(ts, q is _GOOD, self)
        if q is not _GOOD:  # comm_error: heard from the gateway, not the device; stale: no news
            if q is _COMM_ERROR:
                self._comm_error(dev, ts)
            return self._done(out)
        self._n_readings += len(values)
        # in the message's order (it orders the transitions); most measurements have no rule
        names, plan = dev.plan
        if names != (now := list(values)):
            by_m = dev.by_m
            names, plan = dev.plan = now, tuple((n, by_m[n]) for n in now if n in by_m)
        for name, conds in plan:
            v = values[name]
            for c in conds:
                c.feed(v, ts, self)
        if out:
            self._n_transitions += len(out)
        return out

    def on_event(self, msg: EventMessage, device: DeviceInfo) -> list[Transition]:
        """Evaluate one discrete event of *device* (out of order ones count by their time)."""
        self._n_events += 1
        dev = self._devices.get(msg.dev)
        if dev is None or dev.info is not device:
            dev = self._resolve(msg.dev, dev, device)
        self._dirty.add(msg.dev)
        ts = msg.ts
        out = self._book.out = []
        dev.last_seen = max(dev.last_seen, ts)
        if dev.attention:
            dev.heard(ts, msg.q is _GOOD, self)
        conds = dev.by_e.get(msg.event)
        if conds:
            extra = {"values": dict(msg.values)} if msg.values else {}
            for c in conds:
                c.on_event(msg.active, ts, self, extra)
        return self._done(out)

    def on_status(self, status: GatewayStatus) -> list[Transition]:
        """A gateway's retained status: birth (online) or last will (offline)."""
        self._n_status += 1
        gw = self._gateway(status.gw)
        ts = status.ts
        if gw.status_ts is not None and ts < gw.status_ts:
            self._n_ooo += 1
            return []
        gw.status_ts = ts
        online = status.state == "online"
        out = self._book.out = []
        if online == gw.online:
            return out
        gw.online = online
        if online:
            gw.fresh_from = ts
            self._dirty.update(gw.devices)
            for c in gw.conds:
                c.end(ts, self)
            for dev_id in sorted(gw.devices):
                for dm in self._devices[dev_id].deadmen:
                    dm.gateway_online(self)
        else:
            for c in gw.conds:
                c.begin(ts, self)
        return self._done(out)

    def advance(
        self, now: float, fired: list[tuple[float, str, int]] | None = None
    ) -> list[Transition]:
        """Move the event-time clock to *now* and fire what fell due (idempotent).

        Timers fire in ``(due, key)`` order. With *fired*, each timer that produced
        transitions appends ``(due, key, end)``: its transitions are the returned list's items
        before ``end`` and after the previous entry's. Engines holding disjoint devices can so
        merge their transitions into the order one engine holding them all would produce.
        """
        self._clock = max(self._clock, now)
        heap = self._heap
        if not heap or heap[0][0] > now:
            return []
        out = self._book.out = []
        timed = self._timed
        while heap and heap[0][0] <= now:
            due, key = heapq.heappop(heap)
            t = timed.get(key)
            if t is None or t.due != due:
                continue  # rescheduled or cancelled since
            if isinstance(t, MaintenanceEnd):
                self._dirty.add(t.dev)
                self._end_maintenance(t)
            else:
                if t.dev is not None:  # a device's cond (a gateway's are in the base)
                    self._dirty.add(t.dev)
                t.on_timer(self, due)
            if fired is not None and len(out) != (fired[-1][2] if fired else 0):
                fired.append((due, key, len(out)))
        return self._done(out)

    def set_maintenance(self, device: str, until: float) -> None:
        """Silence *device* (its transitions become SUPPRESSED) until event time *until*."""
        self._book.maint[device] = until
        end = MaintenanceEnd(device, until)
        self._timed[end.key] = end
        heapq.heappush(self._heap, (until, end.key))

    def close(self, key: str) -> bool:
        """A person closed the alarm *key* (manual alarms stay open until this is called)."""
        cond = self._timed.get(key)
        self._dirty.add(key.split("/", 1)[0])
        return self._book.close(key, cond if isinstance(cond, Cond) else None)

    def open_alarms(self) -> list[OpenAlarm]:
        return [a.view() for a in self._book.open.values()]

    @property
    def devices_seen(self) -> int:
        return len(self._devices)

    @property
    def stats(self) -> dict[str, int]:
        return {
            "messages": self._n_data + self._n_events + self._n_status,
            "data": self._n_data,
            "events": self._n_events,
            "statuses": self._n_status,
            "readings": self._n_readings,
            "out_of_order": self._n_ooo,
            "duplicates": self._n_dup,
            "transitions": self._n_transitions,
            "open_alarms": len(self._book.open),
            "timers": len(self._heap),
        }

    def snapshot(self) -> dict[str, Any]:
        """The full state as JSON-able data; ``Engine.restore`` continues from it exactly."""
        return snap.dump(self)

    def snapshot_delta(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(base, devices changed since the last call): cheap checkpoints of big fleets.

        The base is small (gateways, open alarms, maintenance, correlation); the devices part
        holds only the devices touched since the previous call. ``{**base, "devices": all
        device states ever returned, latest per id}`` is a full snapshot for ``restore``.
        """
        dirty, self._dirty = self._dirty, set()
        return snap.dump_base(self), snap.dump_devices(self, sorted(dirty))

    @classmethod
    def restore(cls, ruleset: RuleSet, snapshot: dict[str, Any]) -> Engine:
        """An engine that continues as if the one that took *snapshot* had never stopped."""
        engine = cls(ruleset)
        snap.load(engine, snapshot)
        return engine

    # -- what conditions call (rules.conds.Sink) --------------------------------------------

    def commit(
        self, cond: Cond, level: int, ts: float, extra: dict[str, Any] | None = None
    ) -> None:
        if level < 0:
            cond.latched = False
        cond.level = level
        self._book.publish(cond, ts, extra)

    def schedule(self, cond: Cond) -> None:
        if cond.due is not None:
            heapq.heappush(self._heap, (cond.due, cond.key))

    def record(self, cond: Cond, ts: float, extra: dict[str, Any]) -> None:
        self._book.record(cond, ts, extra)

    def suppress(self, cond: Cond, ts: float, extra: dict[str, Any]) -> None:
        self._book.suppress(cond, ts, extra)

    def out_of_order(self) -> None:
        self._n_ooo += 1

    # -- internals --------------------------------------------------------------------------

    def _done(self, out: list[Transition]) -> list[Transition]:
        self._n_transitions += len(out)
        return out

    def _building(self, dev: str) -> str:
        d = self._devices.get(dev)
        return d.info.building if d is not None else ""

    def _comm_error(self, dev: Device, ts: float) -> None:
        for q in dev.quality:
            q.begin(ts, self)
        dev.attention = True

    def _end_maintenance(self, end: MaintenanceEnd) -> None:
        if self._book.maint.get(end.dev) != end.due:
            return
        del self._book.maint[end.dev]
        del self._timed[end.key]
        dev = self._devices.get(end.dev)
        if dev is not None:
            self._book.reconcile(dev.conds, end.due)

    def _gateway(self, gw_id: str) -> Gateway:
        gw = self._gateways.get(gw_id)
        if gw is None:
            rules = self.ruleset.gateway_rules(gw_id)
            conds = tuple(GatewayOffline(r, f"{gw_id}/{r.id}", None, gw_id) for r in rules)
            gw = self._gateways[gw_id] = Gateway(gw_id, conds)
            for c in conds:
                self._timed[c.key] = c
        return gw

    def _resolve(self, dev_id: str, dev: Device | None, info: DeviceInfo) -> Device:
        if dev is not None and dev.info == info:
            dev.info = info  # an equal object: remember it, the next check is by identity
            return dev
        return self._learn(dev_id, info)

    def _learn(self, dev_id: str, info: DeviceInfo) -> Device:
        """First message of a device, or its registry facts changed: (re)build its rules."""
        old = self._devices.get(dev_id)
        gw = self._gateway(info.gateway)
        dev = Device(dev_id, info, gw)
        if old is not None:
            dev.last_ts, dev.last_values, dev.last_q = old.last_ts, old.last_values, old.last_q
            dev.last_seen = old.last_seen
            old.gateway.devices.discard(dev_id)
        gw.devices.add(dev_id)
        self._devices[dev_id] = dev
        previous = {c.key: c for c in old.conds} if old is not None else {}
        build_conds(dev, self.ruleset.device_rules(info), previous, self._timed)
        for dm in dev.deadmen:
            if dm.level < 0 and not dm.inhibited:
                dm.start(self)
        dev.attention = any(dm.busy() for dm in dev.deadmen) or any(q.busy() for q in dev.quality)
        return dev
