"""Workers and their shifts as CSV text (pure: text in, dataclasses out, and back).

``workers.csv``: ``id,name,phone,locale,role,community,grids,push_subscription`` —
locale ``zh-CN`` (default) or ``en``; role ``worker`` (default), ``supervisor`` or
``commander``; grids separated by ``;``, the first is the home grid (required for a worker;
for a supervisor, the grids supervised — empty means the whole community); push_subscription
optional, the browser's Web Push subscription as a JSON object.

``shifts.csv``: ``worker,weekdays,start,end,tz`` — one row per shift, a worker may have
several; weekdays like ``mon-fri``, ``sat;sun``, ``daily`` (the day the shift starts); start
and end ``HH:MM`` local time, end ``24:00`` allowed, end <= start runs overnight; tz an IANA
zone, default ``Asia/Shanghai``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TypeVar

from cloud.registry.csvio import FieldError, choice, parse_csv, phone, required, write_csv
from cloud.registry.model import Locale, Role, Shift, Worker
from cloud.registry.shifts import format_hhmm, format_weekdays, parse_hhmm, parse_weekdays, zone

WORKER_COLUMNS = (
    "id",
    "name",
    "phone",
    "locale",
    "role",
    "community",
    "grids",
    "push_subscription",
)
SHIFT_COLUMNS = ("worker", "weekdays", "start", "end", "tz")
DEFAULT_TZ = "Asia/Shanghai"
T = TypeVar("T")


def read_workers_csv(text: str, filename: str) -> list[tuple[int, Worker]]:
    """(line, Worker) pairs; ConfigError naming file, line and field for every bad row."""
    return parse_csv(
        text, filename, WORKER_COLUMNS, ("id", "name", "phone"), _worker, key=lambda w: w.id
    )


def _worker(row: dict[str, str]) -> Worker:
    role = Role(choice(row, "role", [r.value for r in Role], Role.WORKER.value))
    grids = tuple(g.strip() for g in row.get("grids", "").split(";") if g.strip())
    if role is Role.WORKER and not grids:
        raise FieldError("grids", "a worker needs at least one assigned grid")
    if role is not Role.COMMANDER and not row.get("community"):
        raise FieldError("community", f"empty (required for a {role.value})")
    return Worker(
        id=required(row, "id"),
        name=required(row, "name"),
        phone=phone(row, "phone"),
        locale=Locale(choice(row, "locale", [x.value for x in Locale], Locale.ZH_CN.value)),
        role=role,
        community=row.get("community", ""),
        grids=grids,
        push_subscription=_subscription(row.get("push_subscription", "")),
    )


def _subscription(text: str) -> str | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise FieldError("push_subscription", f"not JSON: {err.msg}") from None
    if not isinstance(value, dict) or not isinstance(value.get("endpoint"), str):
        raise FieldError("push_subscription", "not a subscription object with an endpoint")
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def write_workers_csv(items: Iterable[Worker]) -> str:
    return write_csv(
        WORKER_COLUMNS,
        (
            (
                w.id,
                w.name,
                w.phone,
                w.locale.value,
                w.role.value,
                w.community,
                ";".join(w.grids),
                w.push_subscription or "",
            )
            for w in items
        ),
    )


def read_shifts_csv(text: str, filename: str) -> list[tuple[int, Shift]]:
    """(line, Shift) pairs; ConfigError naming file, line and field for every bad row."""
    return parse_csv(text, filename, SHIFT_COLUMNS, ("worker", "weekdays", "start", "end"), _shift)


def _shift(row: dict[str, str]) -> Shift:
    tz = row.get("tz") or DEFAULT_TZ
    _checked("tz", zone, tz)
    return Shift(
        worker=required(row, "worker"),
        weekdays=_checked("weekdays", parse_weekdays, row["weekdays"]),
        start_min=_checked("start", parse_hhmm, row["start"]),
        end_min=_checked("end", lambda t: parse_hhmm(t, allow_24=True), row["end"]),
        tz=tz,
    )


def _checked(field: str, parse: Callable[[str], T], text: str) -> T:
    try:
        return parse(text)
    except ValueError as err:
        raise FieldError(field, str(err)) from None


def write_shifts_csv(items: Iterable[Shift]) -> str:
    return write_csv(
        SHIFT_COLUMNS,
        (
            (
                s.worker,
                format_weekdays(s.weekdays),
                format_hhmm(s.start_min),
                format_hhmm(s.end_min),
                s.tz,
            )
            for s in items
        ),
    )
