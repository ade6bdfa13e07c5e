"""Weekly shifts: parsing their text form and answering "who is on duty at t" fast.

A :class:`Roster` compiles every shift into minute-of-week segments per time zone once, so the
question costs one local-time conversion and a bisect, however many workers there are.
Shift times are whole minutes, so the answer is exact: [start, end) to the second.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cloud.registry.model import Shift

WEEK_MIN = 7 * 1440
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_SEP = re.compile(r"[;,\s]+")


def parse_hhmm(text: str, *, allow_24: bool = False) -> int:
    """'HH:MM' to minutes after midnight; '24:00' only where *allow_24*."""
    if allow_24 and text == "24:00":
        return 1440
    match = _TIME.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a time HH:MM")
    return int(match[1]) * 60 + int(match[2])


def format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_weekdays(text: str) -> frozenset[int]:
    """'mon-fri', 'sat;sun', 'daily', 'mon,wed,fri' to a set of weekdays (0 = Monday)."""
    days: set[int] = set()
    for part in filter(None, _SEP.split(text.strip().lower())):
        if part == "daily":
            days.update(range(7))
            continue
        first, _, last = part.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ValueError(f"{part!r} is not a weekday ({'/'.join(DAY_NAMES)}, daily)")
        a, b = DAY_NAMES.index(first), DAY_NAMES.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    if not days:
        raise ValueError("no weekday given")
    return frozenset(days)


def format_weekdays(days: Iterable[int]) -> str:
    return ";".join(DAY_NAMES[d] for d in sorted(days))


def zone(name: str) -> ZoneInfo:
    """The named IANA time zone; ValueError when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a known time zone") from None


def minute_of_week(now: float, tz: ZoneInfo) -> int:
    local = datetime.fromtimestamp(now, tz)
    return local.weekday() * 1440 + local.hour * 60 + local.minute


def shift_covers(shift: Shift, now: float) -> bool:
    """Does *shift* cover the instant *now* (epoch seconds)? The slow, obvious definition."""
    m = minute_of_week(now, zone(shift.tz))
    return any(
        (m - (day * 1440 + shift.start_min)) % WEEK_MIN < shift.duration_min
        for day in shift.weekdays
    )


class _ZoneTable:
    """On-duty sets for one time zone, per minute-of-week segment."""

    def __init__(self, tz: ZoneInfo, shifts: list[tuple[int, Shift]]) -> None:
        self.tz = tz
        events: dict[int, list[tuple[int, int]]] = {0: []}
        for owner, s in shifts:
            for day in s.weekdays:
                start = day * 1440 + s.start_min
                for a, b in _split(start, s.duration_min):
                    events.setdefault(a, []).append((owner, 1))
                    events.setdefault(b, []).append((owner, -1))
        self.starts = sorted(k for k in events if k < WEEK_MIN)
        counts: dict[int, int] = {}
        self.sets: list[frozenset[int]] = []
        for t in self.starts:
            for owner, delta in events[t]:
                counts[owner] = counts.get(owner, 0) + delta
            self.sets.append(frozenset(o for o, c in counts.items() if c > 0))

    def at(self, now: float) -> frozenset[int]:
        return self.sets[bisect.bisect_right(self.starts, minute_of_week(now, self.tz)) - 1]


def _split(start: int, length: int) -> list[tuple[int, int]]:
    """An interval of the week, split where it wraps past Sunday midnight."""
    end = start + length
    return [(start, end)] if end <= WEEK_MIN else [(start, WEEK_MIN), (0, end - WEEK_MIN)]


class Roster:
    """Who is on duty when: built once from shifts, each owned by an integer id."""

    def __init__(self, shifts: Iterable[tuple[int, Shift]]) -> None:
        by_zone: dict[str, list[tuple[int, Shift]]] = {}
        for owner, s in shifts:
            by_zone.setdefault(s.tz, []).append((owner, s))
        self._tables = [_ZoneTable(zone(name), items) for name, items in sorted(by_zone.items())]

    def on_duty(self, now: float) -> frozenset[int]:
        """The owners whose shift covers *now* (epoch seconds)."""
        if len(self._tables) == 1:
            return self._tables[0].at(now)
        return frozenset().union(*(t.at(now) for t in self._tables))
