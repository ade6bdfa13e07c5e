"""The numbers the command centre asks for, from the board: raised, closed, false, overdue."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine as Database

from cloud.lifecycle.board import CLEARED, list_board
from cloud.lifecycle.model import State


@dataclass(frozen=True, slots=True)
class Kpis:
    """Counts over every alarm on the board (发生数 / 完结数 / 误报 / 超时数)."""

    raised: int
    closed: int
    false_alarms: int
    overdue: int

    def line(self) -> str:
        return (
            f"KPI raised {self.raised} · closed {self.closed} · false alarms {self.false_alarms}"
            f" · overdue {self.overdue} (发生 {self.raised} / 完结 {self.closed} / "
            f"误报 {self.false_alarms} / 超时 {self.overdue})"
        )


def board_kpis(db: Database, limit: int = 10_000) -> Kpis:
    """The KPIs of the newest *limit* alarms (a demo's whole run)."""
    rows = list_board(db, limit=limit)
    closed = {State.RESOLVED.value, CLEARED}
    return Kpis(
        raised=len(rows),
        closed=sum(r.state in closed for r in rows),
        false_alarms=sum(r.outcome == "false_alarm" for r in rows),
        overdue=sum(r.overdue for r in rows),
    )
