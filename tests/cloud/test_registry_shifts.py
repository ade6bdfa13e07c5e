"""Shifts: weekday and time parsing, overnight and wrap-around, the exact edges, the Roster."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.registry.model import Shift
from cloud.registry.shifts import Roster, parse_hhmm, parse_weekdays, shift_covers

SH = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2024, 5, 6, tzinfo=SH)  # a Monday
DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def at(day: str, hhmm: str, seconds: int = 0) -> float:
    h, m = map(int, hhmm.split(":"))
    return (MONDAY + timedelta(days=DAYS[day], hours=h, minutes=m, seconds=seconds)).timestamp()


def shift(days: str, start: str, end: str, tz: str = "Asia/Shanghai") -> Shift:
    return Shift("w", parse_weekdays(days), parse_hhmm(start), parse_hhmm(end, allow_24=True), tz)


@pytest.mark.parametrize(
    ("days", "start", "end", "when", "on"),
    [
        # day shift: [start, end)
        ("mon-fri", "08:00", "20:00", ("mon", "08:00"), True),
        ("mon-fri", "08:00", "20:00", ("mon", "07:59", 59), False),
        ("mon-fri", "08:00", "20:00", ("mon", "19:59", 59), True),
        ("mon-fri", "08:00", "20:00", ("mon", "20:00"), False),
        ("mon-fri", "08:00", "20:00", ("sat", "12:00"), False),
        # overnight: belongs to the day it starts on
        ("mon", "20:00", "08:00", ("mon", "20:00"), True),
        ("mon", "20:00", "08:00", ("tue", "03:00"), True),
        ("mon", "20:00", "08:00", ("tue", "07:59", 59), True),
        ("mon", "20:00", "08:00", ("tue", "08:00"), False),
        ("mon", "20:00", "08:00", ("mon", "03:00"), False),  # Sunday night was not on
        ("mon", "20:00", "08:00", ("tue", "20:00"), False),
        # Sunday night runs into Monday morning (the week wraps)
        ("sun", "22:00", "06:00", ("mon", "05:00"), True),
        ("sun", "22:00", "06:00", ("mon", "06:00"), False),
        # 24-hour shifts: start == end, and 00:00-24:00
        ("wed", "08:00", "08:00", ("thu", "07:59"), True),
        ("wed", "08:00", "08:00", ("thu", "08:00"), False),
        ("wed", "00:00", "24:00", ("wed", "23:59", 59), True),
        ("wed", "00:00", "24:00", ("thu", "00:00"), False),
        ("daily", "00:00", "00:00", ("sat", "13:37"), True),
        # wrapping weekday ranges
        ("fri-mon", "09:00", "10:00", ("sun", "09:30"), True),
        ("fri-mon", "09:00", "10:00", ("wed", "09:30"), False),
    ],
)
def test_shift_edges(days: str, start: str, end: str, when: tuple[str, ...], on: bool) -> None:
    s = shift(days, start, end)
    now = at(when[0], when[1], int(when[2]) if len(when) > 2 else 0)
    assert shift_covers(s, now) is on
    assert (0 in Roster([(0, s)]).on_duty(now)) is on


def test_time_zone_is_the_shifts_own() -> None:
    london = shift("mon", "09:00", "17:00", "Europe/London")
    assert shift_covers(london, at("mon", "17:30"))  # 10:30 in London (BST)
    assert not shift_covers(london, at("mon", "10:00"))  # 03:00 in London


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("sat;sun", {5, 6}),
        ("Mon, Wed ,fri", {0, 2, 4}),
        ("daily", set(range(7))),
        ("sat-mon", {5, 6, 0}),
    ],
)
def test_weekdays(text: str, days: set[int]) -> None:
    assert parse_weekdays(text) == days


@pytest.mark.parametrize("text", ["", "funday", "mon-xyz", ";"])
def test_bad_weekdays(text: str) -> None:
    with pytest.raises(ValueError, match="weekday"):
        parse_weekdays(text)


@pytest.mark.parametrize("text", ["8:00", "24:00", "12:60", "noon", "07:5"])
def test_bad_times(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm(text)


_minutes = st.integers(0, 1439)
_shifts = st.builds(
    lambda days, start, end, tz: Shift("w", frozenset(days), start, end, tz),
    st.sets(st.integers(0, 6), min_size=1),
    _minutes,
    st.integers(0, 1440),
    st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/New_York"]),
)


@settings(max_examples=200, deadline=None)
@given(
    shifts=st.lists(_shifts, min_size=1, max_size=6),
    offset=st.integers(0, 3 * 7 * 86400),
)
def test_roster_agrees_with_the_definition(shifts: list[Shift], offset: int) -> None:
    """The compiled roster answers exactly as checking every shift would, DST included."""
    now = datetime(2024, 3, 4, tzinfo=SH).timestamp() + offset
    roster = Roster(enumerate(shifts))
    assert roster.on_duty(now) == {i for i, s in enumerate(shifts) if shift_covers(s, now)}
