"""What the engine keeps per device and per gateway, and the liveness conditions on them:
deadman (silence), quality (comm_error) and gateway offline."""

from __future__ import annotations

from typing import Any, Protocol, cast

from rules.compiled import Rule
from rules.conds import NONE, Cond, Count, Event, Levelled, Rate, Record, Sink
from rules.devices import DeviceInfo
from wire.messages import Quality

NEG_INF = float("-inf")


class LivenessSink(Sink, Protocol):
    def suppress(self, cond: Cond, ts: float, extra: dict[str, Any]) -> None: ...


class Gateway:
    """A gateway: online or not (retained status / last will), its devices and its rules."""

    __slots__ = ("conds", "devices", "fresh_from", "id", "inhibits", "online", "status_ts")

    def __init__(self, gw: str, conds: tuple[GatewayOffline, ...]) -> None:
        self.id = gw
        self.online = True  # until a status says otherwise
        self.status_ts: float | None = None
        self.fresh_from = NEG_INF  # back online at: devices' silence counts from here
        self.devices: set[str] = set()
        self.conds = conds
        self.inhibits = any(c.rule.inhibits_deadman for c in conds)


class Device:
    """A device the engine has heard from, with its effective rules' conditions."""

    __slots__ = (
        "attention",
        "by_e",
        "by_m",
        "conds",
        "deadmen",
        "gateway",
        "id",
        "info",
        "info_state",
        "last_q",
        "last_seen",
        "last_ts",
        "last_values",
        "plan",
        "quality",
    )

    def __init__(self, dev: str, info: DeviceInfo, gateway: Gateway) -> None:
        self.id = dev
        self.info = info
        self.info_state: dict[str, Any] | None = None  # info as a snapshot has it, once
        self.gateway = gateway
        self.last_ts = NEG_INF  # latest data message processed
        self.last_values: dict[str, Any] | None = None
        self.last_q: Quality | None = None
        self.last_seen = NEG_INF  # latest message of any kind
        self.by_m: dict[str, tuple[Any, ...]] = {}
        self.by_e: dict[str, tuple[Any, ...]] = {}
        # the measurement names of the last data message, in its order, and of those the ones
        # with conditions: a device sends the same names each poll, so one list comparison
        # replaces a lookup per reading
        self.plan: tuple[list[str], tuple[tuple[str, tuple[Any, ...]], ...]] = ([], ())
        self.conds: tuple[Cond, ...] = ()
        self.deadmen: tuple[Deadman, ...] = ()
        self.quality: tuple[CommQuality, ...] = ()
        self.attention = False  # a liveness condition is not idle: check it on each message

    def heard(self, ts: float, good: bool, eng: LivenessSink) -> None:
        """A message at *ts*: silence ends; with good quality a comm_error streak ends."""
        for dm in self.deadmen:
            dm.heard(ts, eng)
        if good:
            for q in self.quality:
                q.good(ts, eng)
        self.attention = any(dm.busy() for dm in self.deadmen) or any(
            q.busy() for q in self.quality
        )


class Deadman(Cond):
    """No message for factor x heartbeat; held back while the gateway is offline."""

    __slots__ = ("device", "inhibited", "period")

    def __init__(self, rule: Rule, key: str, device: Device) -> None:
        super().__init__(rule, key, device.id, device.info.gateway)
        self.device = device
        self.period = rule.factor * device.info.heartbeat_s
        self.inhibited = False

    def start(self, eng: Sink) -> None:
        d = self.device
        self.due = max(d.last_seen, d.gateway.fresh_from) + self.period
        eng.schedule(self)

    def busy(self) -> bool:
        return self.level >= 0 or self.inhibited or self.due is None

    def heard(self, ts: float, eng: Sink) -> None:
        self.inhibited = False
        if self.level >= 0:
            eng.commit(self, NONE, ts)
        if self.due is None:
            self.start(eng)

    def on_timer(self, eng: Sink, due: float) -> None:
        d = self.device
        deadline = max(d.last_seen, d.gateway.fresh_from) + self.period
        if deadline > due:  # heard since: look again later (one timer per device, lazily)
            self.due = deadline
            eng.schedule(self)
            return
        self.due = None
        d.attention = True
        if not d.gateway.online and d.gateway.inhibits:
            if not self.inhibited:
                self.inhibited = True
                why = {"inhibited_by": f"{d.gateway.id} offline"}
                cast(LivenessSink, eng).suppress(self, deadline, why)
            return
        if self.level < 0:
            eng.commit(self, 0, deadline)

    def gateway_online(self, eng: Sink) -> None:
        self.inhibited = False
        if self.level < 0 and self.due is None:
            self.start(eng)

    def value(self) -> float | None:
        return self.period

    def detail(self, level: int) -> dict[str, Any]:
        d = self.device
        last = None if d.last_seen == NEG_INF else d.last_seen
        return {"silent_s": self.period, "heartbeat_s": d.info.heartbeat_s, "last_seen": last}

    def dump(self) -> list[Any]:
        return [self.kind, self.level, self.due, self.latched, self.inhibited]

    def load(self, data: list[Any]) -> None:
        super().load(data)
        self.inhibited = data[3]


class _Streak(Cond):
    """A condition that must last for_s (comm_error, gateway offline) and ends at once."""

    __slots__ = ("since",)

    def __init__(self, rule: Rule, key: str, dev: str | None, gw: str) -> None:
        super().__init__(rule, key, dev, gw)
        self.since: float | None = None

    def begin(self, ts: float, eng: Sink) -> None:
        if self.due is not None and self.due <= ts:
            self.on_timer(eng, self.due)
        if self.since is not None or self.level >= 0:
            return
        if self.rule.for_s <= 0:
            eng.commit(self, 0, ts)
            return
        self.since, self.due = ts, ts + self.rule.for_s
        eng.schedule(self)

    def end(self, ts: float, eng: Sink) -> None:
        if self.due is not None and self.due <= ts:
            self.on_timer(eng, self.due)
        self.since = self.due = None
        if self.level >= 0:
            eng.commit(self, NONE, ts)

    def busy(self) -> bool:
        return self.since is not None or self.level >= 0

    def on_timer(self, eng: Sink, due: float) -> None:
        self.due = None
        if self.since is not None:
            self.since = None
            eng.commit(self, 0, due)

    def dump(self) -> list[Any]:
        return [self.kind, self.level, self.due, self.latched, self.since]

    def load(self, data: list[Any]) -> None:
        super().load(data)
        self.since = data[3]


class CommQuality(_Streak):
    """The gateway says the device does not answer (quality comm_error)."""

    __slots__ = ()

    good = _Streak.end

    def detail(self, level: int) -> dict[str, Any]:
        return {"quality": Quality.COMM_ERROR.value, "for_s": self.rule.for_s}


class GatewayOffline(_Streak):
    """The gateway's retained status says offline (or its last will did)."""

    __slots__ = ()

    def detail(self, level: int) -> dict[str, Any]:
        return {"for_s": self.rule.for_s}


class MaintenanceEnd:
    """A timer: a device's maintenance window closes."""

    __slots__ = ("dev", "due", "key")

    def __init__(self, dev: str, until: float) -> None:
        self.dev, self.due, self.key = dev, until, f"~maintenance/{dev}"


_CONDS: dict[str, type[Cond]] = {
    "threshold": Levelled,
    "rate": Rate,
    "event": Event,
    "count": Count,
}


def build_conds(
    dev: Device, rules: tuple[Rule, ...], previous: dict[str, Cond], timed: dict[str, Any]
) -> None:
    """Create the device's conditions and its lookup tables (measurement / event -> conds)."""
    conds: list[Cond] = []
    by_m: dict[str, list[Cond]] = {}
    by_e: dict[str, list[Cond]] = {}
    for rule in rules:
        key = f"{dev.id}/{rule.id}"
        cond: Cond
        if rule.kind == "deadman":
            cond = Deadman(rule, key, dev)
        elif rule.kind == "quality":
            cond = CommQuality(rule, key, dev.id, dev.info.gateway)
        elif rule.kind == "event" and rule.record_only:
            cond = Record(rule, key, dev.id, dev.info.gateway)
        else:
            cond = _CONDS[rule.kind](rule, key, dev.id, dev.info.gateway)
        old = previous.get(key)
        if old is not None and old.rule.kind == rule.kind:
            cond.adopt(old)
        conds.append(cond)
        timed[key] = cond
        if rule.measurement:
            by_m.setdefault(rule.measurement, []).append(cond)
        elif rule.event:
            by_e.setdefault(rule.event, []).append(cond)
    dev.conds = tuple(conds)
    dev.by_m = {k: tuple(v) for k, v in by_m.items()}
    dev.by_e = {k: tuple(v) for k, v in by_e.items()}
    dev.deadmen = tuple(c for c in conds if isinstance(c, Deadman))
    dev.quality = tuple(c for c in conds if isinstance(c, CommQuality))
