"""Field devices of the synthetic fleet: what each type reads at a poll, and how it reports.

Each model is polled at non-decreasing times and returns its measurements (the edge
profiles' names and units) or None while the device does not answer. ``Reporter`` then
behaves like the gateway's poller: events on bit edges and counter steps, a data message
when a value moves beyond its deadband, when quality changes, or at the heartbeat.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Value = float | int | bool
Values = dict[str, Value]
DAY_S = 86400.0
UTC_OFFSET_S = 8 * 3600  # the district's local time (Asia/Shanghai) for daily patterns


def local_hour(t: float) -> float:
    return ((t + UTC_OFFSET_S) % DAY_S) / 3600.0


@dataclass(frozen=True, slots=True)
class EventRule:
    name: str
    measurement: str
    counter: bool = False
    attach: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Profile:
    """The parts of an edge profile the reporter needs."""

    deadbands: tuple[tuple[str, float], ...]
    events: tuple[EventRule, ...]


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        (
            ("alarm", 0),
            ("fault", 0),
            ("test", 0),
            ("low_battery", 0),
            ("tamper", 0),
            ("obscuration_pct_per_m", 0.1),
            ("temperature_c", 0.5),
            ("battery_mv", 50),
            ("alarm_threshold_pct_per_m", 0),
            ("sounder_silenced", 0),
        ),
        (
            EventRule("smoke_alarm", "alarm", attach=("obscuration_pct_per_m", "temperature_c")),
            EventRule("fault", "fault"),
            EventRule("test_button", "test"),
            EventRule("low_battery", "low_battery", attach=("battery_mv",)),
            EventRule("tamper", "tamper"),
        ),
    ),
    "ebike": Profile(
        (
            ("ebike_present", 0),
            ("door_held", 0),
            ("camera_fault", 0),
            ("detections", 0),
            ("last_detection_ts", 0),
            ("door_hold_enabled", 0),
        ),
        (
            EventRule("ebike_detected", "detections", counter=True, attach=("last_detection_ts",)),
            EventRule("door_held", "door_held"),
            EventRule("camera_fault", "camera_fault"),
        ),
    ),
    "manhole": Profile(
        (
            ("displaced", 0),
            ("tilt_alarm", 0),
            ("water_alarm", 0),
            ("low_battery", 0),
            ("tilt_deg", 1.0),
            ("water_level_mm", 10),
            ("battery_mv", 50),
            ("signal_dbm", 3),
        ),
        (
            EventRule("cover_displaced", "displaced", attach=("tilt_deg",)),
            EventRule("tilt_alarm", "tilt_alarm", attach=("tilt_deg",)),
            EventRule("water_alarm", "water_alarm", attach=("water_level_mm",)),
            EventRule("low_battery", "low_battery", attach=("battery_mv",)),
        ),
    ),
    "flood": Profile(
        (
            ("sensor_fault", 0),
            ("level_alarm", 0),
            ("level_mm", 5),
            ("rain_mm_h", 1),
            ("level_alarm_point_mm", 0),
        ),
        (
            EventRule("sensor_fault", "sensor_fault"),
            EventRule("level_alarm", "level_alarm", attach=("level_mm",)),
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class Report:
    """One message the gateway would send: an event (``event`` set) or a data message."""

    ts: float
    values: Values
    event: str = ""
    active: bool | None = None
    comm_error: bool = False


class Reporter:
    """Report by exception, as the gateway's poller does (edge/poller.py)."""

    def __init__(self, profile: Profile, heartbeat_s: float, initial: Values, last: float):
        self._profile = profile
        self._heartbeat_s = heartbeat_s - 1e-6
        self._previous: Values = initial  # last good poll (events are edges against it)
        self._reported: Values = initial
        self._reported_at = last
        self._comm_error = False

    def poll(self, t: float, values: Values | None, out: list[Report]) -> None:
        if values is None:
            if not self._comm_error or t - self._reported_at >= self._heartbeat_s:
                out.append(Report(t, {}, comm_error=True))
                self._comm_error, self._reported_at = True, t
            return
        previous = self._previous
        for rule in self._profile.events:
            now, then = values[rule.measurement], previous.get(rule.measurement)
            if rule.counter:
                if then is not None and (delta := int(now) - int(then)):
                    detail = {rule.measurement: now, "delta": delta}
                    out.append(Report(t, {**values, **detail}, rule.name, None))
            elif bool(now) != bool(then):
                out.append(Report(t, dict(values), rule.name, bool(now)))
        self._previous = values
        if self._comm_error or t - self._reported_at >= self._heartbeat_s or self._changed(values):
            out.append(Report(t, values))
            self._reported, self._reported_at, self._comm_error = values, t, False

    def _changed(self, values: Mapping[str, Value]) -> bool:
        reported = self._reported
        for name, deadband in self._profile.deadbands:
            now, then = values[name], reported[name]
            if now != then if deadband == 0 else abs(now - then) > deadband:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Weather:
    """District-wide rain episodes: (start, end, peak mm/h), triangular in time."""

    episodes: tuple[tuple[float, float, float], ...]

    def rain_mm_h(self, t: float) -> float:
        for start, end, peak in self.episodes:
            if start <= t < end:
                mid = (start + end) / 2
                return peak * (1 - abs(t - mid) / (mid - start))
        return 0.0


@dataclass
class Overrides:
    """Scripted incidents of one device: from each time, these values (None: no answer)."""

    frames: list[tuple[float, Values | None]] = field(default_factory=list)

    def at(self, t: float) -> tuple[bool, Values | None]:
        """(any override active, the override); an empty dict means none."""
        i = bisect_right(self.frames, t, key=lambda f: f[0]) - 1
        if i < 0:
            return False, {}
        frame = self.frames[i][1]
        return frame is None or bool(frame), frame

    def times(self) -> list[float]:
        return [t for t, _ in self.frames]


Model = Callable[[float], Values]


def smoke_model(rng: random.Random) -> Model:
    offset, battery = rng.gauss(0, 1.5), rng.uniform(2900, 3150)
    drain = 25 if rng.random() < 0.01 else 1  # mV/h; a few will cross the low-battery line
    start: list[float] = []

    def poll(t: float) -> Values:
        if not start:
            start.append(t)
        temp = 24 + offset + 3 * math.sin(2 * math.pi * (local_hour(t) - 9) / 24)
        mv = round(battery - drain * (t - start[0]) / 3600)
        return {
            "alarm": False,
            "fault": False,
            "test": False,
            "low_battery": mv < 2600,
            "tamper": False,
            "obscuration_pct_per_m": round(max(0.0, rng.gauss(0.02, 0.01)), 2),
            "temperature_c": round(temp + rng.gauss(0, 0.15), 1),
            "battery_mv": mv,
            "alarm_threshold_pct_per_m": 3.0,
            "sounder_silenced": False,
        }

    return poll


def ebike_rate_per_h(hour: float) -> float:
    """E-bikes entering one lift per hour: evening peak, morning bump, quiet nights."""
    if 18 <= hour < 22:
        return 1.2
    if 7 <= hour < 9:
        return 0.5
    if 9 <= hour < 18 or 22 <= hour < 23:
        return 0.3
    return 0.05


def ebike_detections(rng: random.Random, start: float, end: float) -> list[float]:
    """Arrival times: a Poisson process thinned to the hourly rate."""
    peak, t = 1.2, start
    out: list[float] = []
    while True:
        t += rng.expovariate(peak / 3600)
        if t >= end:
            return out
        if rng.random() < ebike_rate_per_h(local_hour(t)) / peak:
            out.append(round(t, 3))


def ebike_model(detections: list[float], base_count: int, last_ts: int) -> Model:
    def poll(t: float) -> Values:
        n = bisect_right(detections, t)
        return {
            "ebike_present": False,
            "door_held": False,
            "camera_fault": False,
            "detections": (base_count + n) % 65536,
            "last_detection_ts": int(detections[n - 1]) if n else last_ts,
            "door_hold_enabled": True,
        }

    return poll


class Puddle:
    """Water that rises with rain and drains with a time constant (flood gauge, manhole well)."""

    def __init__(self, weather: Weather, base: float, gain: float, tau_s: float) -> None:
        self.weather, self.base, self.gain, self.tau_s = weather, base, gain, tau_s
        self.level, self.t = base, -math.inf

    def at(self, t: float) -> tuple[float, float]:
        rain = self.weather.rain_mm_h(t)
        if self.t > -math.inf:
            eq = self.base + self.gain * rain * self.tau_s
            self.level = eq + (self.level - eq) * math.exp(-(t - self.t) / self.tau_s)
        self.t = t
        return self.level, rain


def manhole_model(rng: random.Random, weather: Weather, wetness: float) -> Model:
    well = Puddle(weather, rng.uniform(30, 150), wetness * rng.uniform(0.003, 0.009), 2400)
    battery, signal = rng.uniform(3400, 3700), rng.uniform(-95, -70)

    def poll(t: float) -> Values:
        level, _ = well.at(t)
        return {
            "displaced": False,
            "tilt_alarm": False,
            "water_alarm": level > 500,
            "low_battery": False,
            "tilt_deg": round(rng.gauss(0, 0.2), 1),
            "water_level_mm": round(level),
            "battery_mv": round(battery),
            "signal_dbm": round(signal + rng.gauss(0, 0.7)),
        }

    return poll


def flood_model(rng: random.Random, weather: Weather, wetness: float) -> Model:
    gauge = Puddle(weather, rng.uniform(0, 40), wetness * rng.uniform(0.0016, 0.005), 3600)

    def poll(t: float) -> Values:
        level, rain = gauge.at(t)
        return {
            "sensor_fault": False,
            "level_alarm": level > 300,
            "level_mm": round(level + rng.gauss(0, 0.5), 1),
            "rain_mm_h": round(rain * wetness, 1),
            "level_alarm_point_mm": 300,
        }

    return poll
