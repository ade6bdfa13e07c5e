"""The fault table: one row per fault, as Markdown a person can paste into a note."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.faults.ledger import Count

HEADER = (
    "fault",
    "alarms expected / seen / doubled",
    "notifications expected / sent / doubled",
    "delivered by",
    "/readyz",
    "worker",
    "health log (not ready / ready again)",
    "time to recover",
    "result",
)


@dataclass
class Row:
    """How the loop came through one fault."""

    number: int
    fault: str
    alarms: Count
    notifications: Count
    channels: str
    readyz: str
    worker: str
    log: str
    recover_s: float | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def cells(self) -> tuple[str, ...]:
        recover = "not recovered" if self.recover_s is None else f"{self.recover_s:.1f} s"
        return (
            f"{self.number}. {self.fault}",
            str(self.alarms),
            str(self.notifications),
            self.channels,
            self.readyz,
            self.worker,
            self.log,
            recover,
            "ok" if self.ok else "FAIL",
        )


def render(rows: list[Row], length: str) -> str:
    """The table, then each failing row's problems; plain text, never wrapped."""
    rows = sorted(rows, key=lambda r: r.number)
    lines = [
        f"Fault suite ({length})",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    for r in rows:
        lines += [f"- {r.number}. {r.fault}: {p}" for p in r.problems]
    return "\n".join(lines) + "\n"
