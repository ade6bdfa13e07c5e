"""Duplicate detection by (gateway, sequence number): the contract's "nothing doubled" check.

Pure and compact: per gateway a watermark below which every number has been seen, plus the
numbers seen above it (bounded: the watermark advances as gaps fill). A drop record's ranges
count as seen, so they never look like a gap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MAX_PENDING = 200_000  # numbers held above a gap before the gap is declared lost


@dataclass
class _Gateway:
    watermark: int = 0  # every seq <= watermark has been seen
    above: set[int] = field(default_factory=set)
    lost: int = 0  # numbers skipped when MAX_PENDING forced the watermark past a gap

    def add(self, seq: int) -> bool:
        """Mark *seq* seen; return False if it was seen before."""
        if seq <= self.watermark or seq in self.above:
            return False
        if seq == self.watermark + 1:
            self.watermark = seq
            above = self.above
            while self.watermark + 1 in above:
                self.watermark += 1
                above.discard(self.watermark)
        else:
            self.above.add(seq)
            if len(self.above) > MAX_PENDING:
                self._force()
        return True

    def _force(self) -> None:
        lowest = min(self.above)
        self.lost += lowest - self.watermark - 1
        self.watermark = lowest - 1
        self.add(lowest)


class SeqTracker:
    """Remembers which (gateway, seq) pairs were seen."""

    def __init__(self) -> None:
        self._gateways: dict[str, _Gateway] = {}

    def first_time(self, gateway: str, seq: int) -> bool:
        """True the first time (gateway, seq) is seen, False for a redelivery."""
        gw = self._gateways.get(gateway)
        if gw is None:
            gw = self._gateways[gateway] = _Gateway()
        return gw.add(seq)

    def seen_ranges(self, gateway: str, ranges: Iterable[tuple[int, int]]) -> None:
        """Mark inclusive ranges seen (the numbers a drop record names)."""
        for first, last in ranges:
            for seq in range(first, last + 1):
                self.first_time(gateway, seq)

    def gaps(self, gateway: str) -> list[tuple[int, int]]:
        """Inclusive ranges not seen yet below the highest number seen."""
        gw = self._gateways.get(gateway)
        if gw is None or not gw.above:
            return []
        out, expect = [], gw.watermark + 1
        for seq in sorted(gw.above):
            if seq > expect:
                out.append((expect, seq - 1))
            expect = seq + 1
        return out

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state, for persisting beside what was processed."""
        return {
            g: {"w": s.watermark, "a": sorted(s.above), "l": s.lost}
            for g, s in self._gateways.items()
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> SeqTracker:
        tracker = cls()
        for g, s in state.items():
            tracker._gateways[g] = _Gateway(int(s["w"]), set(s["a"]), int(s.get("l", 0)))
        return tracker
