"""KPI tables: per-day counts in the office's days, nearest-rank percentiles per community and
grid, the false-alarm list, devices offline, workers on duty."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from cloud.console.board import BoardItem
from cloud.console.kpis import _times, day_of, false_alarms, per_day, percentile
from cloud.console.mapdata import device_states

NOW = 1_767_225_600.0  # 2026-01-01 08:00 in UTC+8


def row(**kw: Any) -> SimpleNamespace:
    base = {
        "raised_at": NOW - 600,
        "acknowledged_at": None,
        "resolved_at": None,
        "overdue": False,
        "device": "smk-1",
        "outcome": None,
        "grid": "g1",
        "community": "c1",
    }
    return SimpleNamespace(**{**base, **kw})


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 90) == 5.0
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == 5.0 and percentile(values, 90) == 9.0


def test_raised_closed_overdue_per_day_in_the_office_day() -> None:
    rows = [
        row(raised_at=NOW - 60, overdue=True),
        row(raised_at=NOW - 86400, resolved_at=NOW - 30),
        row(raised_at=NOW - 86400 * 30),  # before the table's window
    ]
    table = per_day(rows, NOW)
    assert table.rows[0] == [day_of(NOW), 1, 1, 1]
    assert table.rows[1] == [day_of(NOW - 86400), 1, 0, 0]
    assert day_of(NOW) == "2026-01-01"


def test_times_to_acknowledge_and_resolve_per_community() -> None:
    rows = [
        row(acknowledged_at=NOW - 600 + t, resolved_at=NOW - 600 + 10 * t) for t in (10, 20, 30)
    ]
    table = _times(rows, "community")
    assert table.rows == [["c1", "", 3, 20.0, 30.0, 200.0, 300.0]]


def test_the_false_alarm_list_puts_the_breakfast_shop_first() -> None:
    rows = [row(device="shop", outcome="false_alarm")] * 4 + [row(device="shop", outcome="real")]
    rows += [row(device="home", outcome="false_alarm"), row(device="ok", outcome="real")]
    table = false_alarms(rows)
    assert table.rows == [["shop", 4, 5, 0.8], ["home", 1, 1, 1.0]]


def item(device: str | None, gateway: str, category: str) -> BoardItem:
    return BoardItem(
        1,
        "warning",
        "",
        "",
        category,
        device,
        gateway,
        "smoke",
        "",
        "",
        "",
        "",
        "notified",
        None,
        NOW,
        NOW + 60,
        False,
    )


def test_device_states_come_from_the_declared_category() -> None:
    gateways = {"a": "gw1", "b": "gw1", "c": "gw2", "d": "gw2"}
    items = [
        item(None, "gw1", "gateway"),
        item("c", "gw2", "fire"),
        item("d", "gw2", "device_fault"),
    ]
    assert device_states(items, gateways) == {
        "a": "offline",
        "b": "offline",
        "c": "alarm",
        "d": "fault",
    }


def test_every_kpi_row_has_a_cell_per_column() -> None:
    rows = [row(acknowledged_at=NOW - 500, resolved_at=NOW - 100, outcome="false_alarm")]
    for table in (per_day(rows, NOW), _times(rows, "community"), _times(rows, "grid"),
                  false_alarms(rows)):  # fmt: skip
        assert all(len(r) == len(table.columns) for r in table.rows), table.key
