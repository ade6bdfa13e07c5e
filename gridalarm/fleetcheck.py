"""Did the cloud see every message the load fleet published, exactly once?

The fleet writes each gateway's last sequence number (``fleet.json``); the cloud checkpoints,
in the same transaction as what it processed, which numbers it has seen per gateway (rows
``dedup``, or ``dedup.p0``… one per partition) and how many messages it handled (``counts``,
``counts.p0``…). Every gateway's 1..last must be seen, nothing beyond it; and the handled
data and event messages must add up to the numbers published — more would mean some were
processed twice (the seq tracker cannot count those, the counts can).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.ingest.checkpoint import checkpoints
from wire.dedup import SeqTracker

Ranges = list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class GatewayCheck:
    """One gateway: what it published against what the checkpoints saw."""

    gateway: str
    published: int  # its last sequence number: 1..published went out
    seen: int  # how many of 1..published the checkpoints have seen
    missing: Ranges  # inclusive ranges of 1..published not seen
    beyond: int  # the highest number seen above *published* (0: none)
    lost: int = 0  # numbers the cloud gave up waiting for (too many gaps open at once)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.beyond and not self.lost


@dataclass
class FleetCheck:
    gateways: list[GatewayCheck] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)  # the checkpoint rows read
    handled: int | None = None  # data + event messages the counts say (None: no counts row)
    others: list[str] = field(default_factory=list)  # gateways seen that the fleet does not have

    @property
    def published(self) -> int:
        return sum(g.published for g in self.gateways)

    @property
    def doubled(self) -> int | None:
        """Handled minus published; None when the counts cannot say (missing, or they include
        gateways that are not the fleet's)."""
        if self.handled is None or self.others:
            return None
        return self.handled - self.published

    @property
    def ok(self) -> bool:
        return all(g.ok for g in self.gateways) and self.doubled in (None, 0)


def _is_part(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def read_rows(db: Engine) -> dict[str, Any]:
    """Every checkpoint row named dedup / dedup.* / counts / counts.*, parsed."""
    query = sa.select(checkpoints.c.name, checkpoints.c.value)
    with db.connect() as conn:
        rows = conn.execute(query).all()
    return {
        name: json.loads(value)
        for name, value in rows
        if _is_part(name, "dedup") or _is_part(name, "counts")
    }


def merged_tracker(rows: dict[str, Any]) -> tuple[SeqTracker, dict[str, int]]:
    """One tracker of everything the dedup rows say was seen (a gateway normally lives in one
    partition, but a database used in both modes may hold it twice), and per gateway the
    numbers the cloud gave up as lost (they count as seen in a tracker)."""
    merged, lost = SeqTracker(), dict[str, int]()
    for name, value in sorted(rows.items()):
        if not _is_part(name, "dedup"):
            continue
        tracker = SeqTracker.restore(value)
        for gateway, state in tracker.snapshot().items():
            seen = [(1, state["w"])] if state["w"] else []
            merged.seen_ranges(gateway, seen + [(a, b) for a, b in state["r"]])
            lost[gateway] = lost.get(gateway, 0) + tracker.lost(gateway)
    return merged, lost


def _highest(tracker: SeqTracker, gateway: str) -> int:
    state = tracker.snapshot().get(gateway)
    if state is None:
        return 0
    return int(state["r"][-1][1]) if state["r"] else int(state["w"])


def check_gateway(tracker: SeqTracker, gateway: str, published: int, lost: int) -> GatewayCheck:
    highest = _highest(tracker, gateway)
    missing = [(a, min(b, published)) for a, b in tracker.gaps(gateway) if a <= published]
    if highest < published:
        missing.append((highest + 1, published))
    seen = published - sum(b - a + 1 for a, b in missing)
    beyond = highest if highest > published else 0
    return GatewayCheck(gateway, published, seen - lost, missing, beyond, lost)


def check_fleet(db: Engine, published: dict[str, int]) -> FleetCheck:
    """Compare *published* ({gateway: last seq}) with the cloud's checkpoints in *db*."""
    rows = read_rows(db)
    tracker, lost = merged_tracker(rows)
    result = FleetCheck(rows=sorted(rows))
    result.gateways = [
        check_gateway(tracker, g, n, lost.get(g, 0)) for g, n in sorted(published.items())
    ]
    result.others = sorted(set(tracker.snapshot()) - set(published))
    counts = [v for name, v in rows.items() if _is_part(name, "counts")]
    if counts:
        result.handled = handled(counts)
    return result


def handled(counts: Iterable[dict[str, Any]]) -> int:
    """Sequenced messages (data and events: they share a gateway's seq) in ``counts`` rows."""
    return sum(int(c.get("data", 0)) + int(c.get("event", 0)) for c in counts)


def report_lines(result: FleetCheck, most: int = 20) -> list[str]:
    """The check for people: the gateways that fail (at most *most*), then the totals."""
    lines = []
    bad = [g for g in result.gateways if not g.ok]
    for g in bad[:most]:
        gaps = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in g.missing[:10])
        more = f" (+{len(g.missing) - 10} more ranges)" if len(g.missing) > 10 else ""
        beyond = f"; seen up to {g.beyond}, beyond what was published" if g.beyond else ""
        beyond += f"; {g.lost} given up as lost by the cloud" if g.lost else ""
        lines.append(
            f"{g.gateway}: published 1..{g.published}, seen {g.seen}"
            + (f"; missing {gaps}{more}" if g.missing else "")
            + beyond
        )
    if len(bad) > most:
        lines.append(f"... and {len(bad) - most} more gateways")
    lines.append(
        f"{len(result.gateways) - len(bad)} of {len(result.gateways)} gateways complete; "
        f"{result.published} messages published, "
        f"{sum(g.seen for g in result.gateways)} seen (rows: {', '.join(result.rows) or 'none'})"
    )
    if result.handled is None:
        lines.append("no counts checkpoint: doubles not checked")
    elif result.doubled is None:
        lines.append(
            f"counts say {result.handled} data+event messages handled, including "
            f"{len(result.others)} gateways the fleet does not have: doubles not checked"
        )
    else:
        verdict = "none doubled" if result.doubled == 0 else f"{result.doubled:+d} against"
        lines.append(f"counts say {result.handled} data+event messages handled: {verdict}")
    lines.append("OK" if result.ok else "FAILED")
    return lines
