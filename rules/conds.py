"""Per-(device, rule) condition state: what each rule kind remembers and how it steps.

A condition decides its *level* (-1: no alarm, else an index into the rule's levels) and
tells the engine through ``Sink.commit``; the engine turns level changes into transitions.
Times are event times. Timers are lazy: a condition keeps its next ``due`` time and the engine
calls ``on_timer`` when the clock passes it; feeding a sample first fires what fell due before
it, so a device's decisions do not depend on how often the caller advances the clock.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from typing import Any, Protocol

from rules.compiled import Rule

NONE = -1


class Sink(Protocol):
    """What a condition needs from the engine."""

    def commit(
        self, cond: Cond, level: int, ts: float, extra: dict[str, Any] | None = None
    ) -> None: ...
    def schedule(self, cond: Cond) -> None: ...
    def record(self, cond: Cond, ts: float, extra: dict[str, Any]) -> None: ...
    def out_of_order(self) -> None: ...


class Cond:
    """State common to every kind."""

    __slots__ = ("dev", "due", "gw", "key", "kind", "latched", "level", "rule")

    def __init__(self, rule: Rule, key: str, dev: str | None, gw: str) -> None:
        self.rule = rule
        self.kind = rule.kind
        self.key = key
        self.dev = dev
        self.gw = gw
        self.level = NONE
        self.due: float | None = None
        self.latched = False  # a person closed the manual alarm; no re-raise until it ends

    def on_timer(self, eng: Sink, due: float) -> None:
        self.due = None

    def value(self) -> float | None:
        return None

    def detail(self, level: int) -> dict[str, Any]:
        return {}

    def dump(self) -> list[Any]:
        """The state as a snapshot keeps it: the rule's kind, then what ``load`` takes.

        Each kind builds its list in one go (checkpoints dump every device that changed)."""
        return [self.kind, self.level, self.due, self.latched]

    def load(self, data: list[Any]) -> None:
        """From ``dump()``'s list without its kind."""
        self.level, self.due, self.latched = data[0], data[1], data[2]

    def adopt(self, old: Cond) -> None:
        """Carry the level over from the same rule before an override / registry change."""
        self.level = min(old.level, len(self.rule.levels) - 1)
        self.latched = old.latched


class Levelled(Cond):
    """Threshold with hysteresis, severity levels and on/off delays, on a normalised x."""

    __slots__ = (
        "clear",
        "for_s",
        "n",
        "off_for_s",
        "pdue",
        "raise_",
        "sign",
        "since",
        "target",
        "x",
    )

    def __init__(self, rule: Rule, key: str, dev: str | None, gw: str) -> None:
        super().__init__(rule, key, dev, gw)
        self.raise_ = rule.raise_
        self.clear = rule.clear
        self.n = len(rule.raise_)
        self.sign = rule.sign
        self.for_s = rule.for_s
        self.off_for_s = rule.off_for_s
        self.x = 0.0  # the latest decided quantity (normalised)
        self.since: float | None = None  # a delay is running since
        self.pdue: float | None = None  # ...and ends at
        self.target = NONE  # the level the running delay leads to

    def feed(self, v: float, ts: float, eng: Sink) -> None:
        x = v * self.sign
        if self.since is None:  # holds(x), inlined: this is the engine's hottest line
            lvl = self.level
            if (lvl + 1 == self.n or x < self.raise_[lvl + 1]) and (
                lvl < 0 or x >= self.clear[lvl]
            ):
                self.x = x  # fast path: no change of level, no delay running
                return
        self.step(x, ts, eng)

    def holds(self, x: float) -> bool:
        """True if *x* keeps the current level (``target_of(x)`` is the level: raise_ ascends)."""
        lvl = self.level
        return (lvl + 1 == self.n or x < self.raise_[lvl + 1]) and (lvl < 0 or x >= self.clear[lvl])

    def target_of(self, x: float) -> int:
        t = self.level
        while t >= 0 and x < self.clear[t]:
            t -= 1
        i = self.n - 1
        while i > t and x < self.raise_[i]:
            i -= 1
        return i

    def step(self, x: float, ts: float, eng: Sink) -> None:
        if self.pdue is not None and self.pdue <= ts:
            self.fire_pending(eng, self.pdue)
        self.x = x
        self.evaluate(ts, eng)

    def evaluate(self, ts: float, eng: Sink) -> None:
        lvl = self.level
        t = self.target_of(self.x)
        if t == lvl:
            self.since = self.pdue = None
            self.reschedule(eng)
            return
        up = t > lvl
        delay = self.for_s if up else self.off_for_s
        if delay <= 0:
            self.since = self.pdue = None
            eng.commit(self, t, ts)
        elif self.since is None or (self.target > lvl) != up:
            self.since, self.pdue, self.target = ts, ts + delay, t
        else:  # the level that held all along: the least bad going up, the worst going down
            self.target = min(self.target, t) if up else max(self.target, t)
        self.reschedule(eng)

    def fire_pending(self, eng: Sink, at: float) -> None:
        target = self.target
        self.since = self.pdue = None
        eng.commit(self, target, at)
        self.evaluate(at, eng)  # the latest sample may call for the next step, from now on

    def reschedule(self, eng: Sink) -> None:
        if self.pdue != self.due:
            self.due = self.pdue
            if self.due is not None:
                eng.schedule(self)

    def on_timer(self, eng: Sink, due: float) -> None:
        self.due = None
        if self.pdue is not None and self.pdue <= due:
            self.fire_pending(eng, self.pdue)
        self.reschedule(eng)

    def value(self) -> float | None:
        return self.x * self.rule.sign

    def detail(self, level: int) -> dict[str, Any]:
        lv = self.rule.levels[level]
        return {
            "measurement": self.rule.measurement,
            "threshold": lv.raise_at,
            "clear_at": lv.clear_at,
        }

    def dump(self) -> list[Any]:
        # one list, not the base's extended (checkpoints dump every device that changed)
        return [
            self.kind,
            self.level,
            self.due,
            self.latched,
            self.x,
            self.since,
            self.pdue,
            self.target,
        ]

    def load(self, data: list[Any]) -> None:
        super().load(data)
        self.x, self.since, self.pdue, self.target = data[3:7]


class Rate(Levelled):
    """Change within (t - window_s, t]: x minus the window's minimum (monotonic deque)."""

    __slots__ = ("win",)

    def __init__(self, rule: Rule, key: str, dev: str | None, gw: str) -> None:
        super().__init__(rule, key, dev, gw)
        # [ts, x] pairs, each a list never changed once made: a snapshot copies the deque
        # alone and is JSON as it stands
        self.win: deque[list[float]] = deque()

    def feed(self, v: float, ts: float, eng: Sink) -> None:
        due = self.due
        if due is not None and due <= ts:
            self.on_timer(eng, due)
        x = v * self.sign
        win = self.win
        while win and win[-1][1] >= x:
            win.pop()
        win.append([ts, x])
        delta = self._delta(ts)
        if self.since is None and self.holds(delta):
            self.x = delta  # what step() comes to when the level holds and no delay runs
            if self.level < 0:
                self.due = None  # reschedule() with no level and no delay: no timer
            else:
                self.reschedule(eng)
            return
        self.step(delta, ts, eng)

    def _delta(self, at: float) -> float:
        win, lo = self.win, at - self.rule.window_s
        while len(win) > 1 and win[0][0] <= lo:
            win.popleft()
        return win[-1][1] - win[0][1] if win[0][0] > lo else 0.0

    def reschedule(self, eng: Sink) -> None:
        due = self.pdue
        if self.level >= 0 or self.since is not None:  # expiry can end a level or a delay
            expiry = self.win[0][0] + self.rule.window_s if len(self.win) > 1 else None
            if expiry is not None and (due is None or expiry < due):
                due = expiry
        if due != self.due:
            self.due = due
            if due is not None:
                eng.schedule(self)

    def on_timer(self, eng: Sink, due: float) -> None:
        self.due = None
        if self.pdue is not None and self.pdue <= due:
            self.fire_pending(eng, self.pdue)
        self.x = self._delta(due)
        self.evaluate(due, eng)

    def value(self) -> float | None:
        return self.x

    def detail(self, level: int) -> dict[str, Any]:
        return {**super().detail(level), "window_s": self.rule.window_s}

    def dump(self) -> list[Any]:
        return [self.kind, self.level, self.due, self.latched, self.x, self.since, self.pdue,
                self.target, list(self.win)]  # fmt: skip

    def load(self, data: list[Any]) -> None:
        super().load(data)
        self.win = deque([float(a), float(b)] for a, b in data[7])


class Event(Cond):
    """active true: level 0; false: none; momentary (None): level 0 for hold_s."""

    __slots__ = ("last_ts",)

    def __init__(self, rule: Rule, key: str, dev: str | None, gw: str) -> None:
        super().__init__(rule, key, dev, gw)
        self.last_ts = float("-inf")

    def on_event(self, active: bool | None, ts: float, eng: Sink, extra: dict[str, Any]) -> None:
        if self.due is not None and self.due <= ts:
            self.on_timer(eng, self.due)
        if active is None:
            self._momentary(ts, eng, extra)
            return
        if ts < self.last_ts:
            eng.out_of_order()
            return
        self.last_ts = ts
        level = 0 if active else NONE
        if level != self.level:
            self.due = None
            eng.commit(self, level, ts, extra)

    def _momentary(self, ts: float, eng: Sink, extra: dict[str, Any]) -> None:
        if ts == self.last_ts:
            return  # the same press again
        self.last_ts = max(self.last_ts, ts)
        until = ts + self.rule.hold_s
        if self.level < 0:
            eng.commit(self, 0, ts, extra)
            if until <= ts:  # no hold: a blip
                eng.commit(self, NONE, ts)
                return
        if self.due is None or until > self.due:  # a later one extends the hold
            self.due = until
            eng.schedule(self)

    def on_timer(self, eng: Sink, due: float) -> None:
        self.due = None
        if self.level >= 0:
            eng.commit(self, NONE, due)

    def detail(self, level: int) -> dict[str, Any]:
        return {"event": self.rule.event}

    def dump(self) -> list[Any]:
        last = self.last_ts if self.last_ts != float("-inf") else None
        return [self.kind, self.level, self.due, self.latched, last]

    def load(self, data: list[Any]) -> None:
        super().load(data)
        self.last_ts = float("-inf") if data[3] is None else data[3]


class Record(Cond):
    """Recorded, never dispatched (the test button): one RECORD per distinct press."""

    __slots__ = ("recent",)
    KEEP = 16

    def __init__(self, rule: Rule, key: str, dev: str | None, gw: str) -> None:
        super().__init__(rule, key, dev, gw)
        self.recent: deque[float] = deque(maxlen=self.KEEP)

    def on_event(self, active: bool | None, ts: float, eng: Sink, extra: dict[str, Any]) -> None:
        if active is False or ts in self.recent:
            return
        self.recent.append(ts)
        eng.record(self, ts, {"event": self.rule.event, **extra})

    def dump(self) -> list[Any]:
        return [self.kind, self.level, self.due, self.latched, list(self.recent)]

    def load(self, data: list[Any]) -> None:
        super().load(data)
        self.recent = deque(data[3], maxlen=self.KEEP)


class Count(Cond):
    """At least min_count events within (t - window_s, t], each counted by its own time."""

    __slots__ = ("latest", "times")

    def __init__(self, rule: Rule, key: str, dev: str | None, gw: str) -> None:
        super().__init__(rule, key, dev, gw)
        self.times: list[float] = []
        self.latest = float("-inf")

    def on_event(self, active: bool | None, ts: float, eng: Sink, extra: dict[str, Any]) -> None:
        if active is False:
            return
        if self.due is not None and self.due <= ts:
            self.on_timer(eng, self.due)
        times = self.times
        i = bisect_left(times, ts)
        if i < len(times) and times[i] == ts:
            return  # the same event again
        times.insert(i, ts)
        self.latest = max(self.latest, ts)
        self._prune(self.latest)
        if self.level < 0 and len(times) >= self.rule.min_count:
            eng.commit(self, 0, self.latest, extra)
        self._reschedule(eng)

    def _prune(self, at: float) -> None:
        lo = at - self.rule.window_s
        cut = 0
        while cut < len(self.times) and self.times[cut] <= lo:
            cut += 1
        if cut:
            del self.times[:cut]

    def _reschedule(self, eng: Sink) -> None:
        n = self.rule.min_count
        due = (
            self.times[-n] + self.rule.window_s
            if self.level >= 0 and len(self.times) >= n
            else None
        )
        if due != self.due:
            self.due = due
            if due is not None:
                eng.schedule(self)

    def on_timer(self, eng: Sink, due: float) -> None:
        self.due = None
        self._prune(due)
        if self.level >= 0 and len(self.times) < self.rule.min_count:
            eng.commit(self, NONE, due)
        self._reschedule(eng)

    def value(self) -> float | None:
        return float(len(self.times))

    def detail(self, level: int) -> dict[str, Any]:
        r = self.rule
        return {
            "event": r.event,
            "count": len(self.times),
            "min_count": r.min_count,
            "window_s": r.window_s,
        }

    def dump(self) -> list[Any]:
        latest = None if self.latest == float("-inf") else self.latest
        return [self.kind, self.level, self.due, self.latched, list(self.times), latest]

    def load(self, data: list[Any]) -> None:
        super().load(data)
        self.times = list(data[3])
        self.latest = float("-inf") if data[4] is None else data[4]
