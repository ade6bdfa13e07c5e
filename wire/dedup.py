"""Duplicate detection by (gateway, sequence number): the contract's "nothing doubled" check.

Pure and compact: per gateway a watermark below which every number has been seen, plus the
numbers seen above it kept as sorted, disjoint, non-adjacent inclusive ranges. Memory and time
grow with the number of *ranges* (gaps), never with how many numbers a range covers, so a drop
record naming a million numbers costs as much as one naming one. A drop record's ranges count
as seen, so they never look like a gap.

Checkpoint format (``snapshot``): ``{gateway: {"w": watermark, "r": [[first, last], ...],
"l": lost}}``. ``restore`` also reads the older format that listed every number above the
watermark (``"a": [seq, ...]``), so existing checkpoints keep working; the next checkpoint is
written in the range format (which older code cannot read: roll back only with its own
checkpoint).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MAX_PENDING = 200_000  # ranges held above the watermark before the lowest gap is declared lost


@dataclass
class _Gateway:
    watermark: int = 0  # every seq <= watermark has been seen
    # seen ranges above watermark + 1: starts[i]..ends[i], sorted, disjoint and non-adjacent
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    lost: int = 0  # numbers skipped when MAX_PENDING forced the watermark past a gap

    def seen(self, seq: int) -> bool:
        if seq <= self.watermark:
            return True
        i = bisect_right(self.starts, seq) - 1
        return i >= 0 and self.ends[i] >= seq

    def add(self, first: int, last: int) -> None:
        """Mark the inclusive range seen: O(log n) plus the ranges it merges."""
        first = max(first, self.watermark + 1)
        if first > last:
            return
        if first == self.watermark + 1 and (not self.starts or self.starts[0] > last + 1):
            self.watermark = last  # the common case: the next numbers, in order
            return
        # ranges that overlap or touch [first, last] are merged into it
        lo = bisect_left(self.ends, first - 1)
        hi = bisect_right(self.starts, last + 1)
        if lo < hi:
            first = min(first, self.starts[lo])
            last = max(last, self.ends[hi - 1])
        self.starts[lo:hi] = [first]
        self.ends[lo:hi] = [last]
        if self.starts[0] == self.watermark + 1:
            self.watermark = self.ends[0]
            del self.starts[0], self.ends[0]
        if len(self.starts) > MAX_PENDING:
            self._force()

    def _force(self) -> None:
        """Give up on the lowest gap: count it lost and move the watermark past it."""
        self.lost += self.starts[0] - self.watermark - 1
        self.watermark = self.ends[0]
        del self.starts[0], self.ends[0]

    def gaps(self) -> list[tuple[int, int]]:
        out, expect = [], self.watermark + 1
        for first, last in zip(self.starts, self.ends, strict=True):
            out.append((expect, first - 1))
            expect = last + 1
        return out

    def state(self) -> dict[str, Any]:
        ranges = [[a, b] for a, b in zip(self.starts, self.ends, strict=True)]
        return {"w": self.watermark, "r": ranges, "l": self.lost}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Gateway:
        gw = cls(watermark=int(state["w"]), lost=int(state.get("l", 0)))
        for first, last in state.get("r", ()):
            gw.add(int(first), int(last))
        for seq in sorted(int(s) for s in state.get("a", ())):  # the per-number format
            gw.add(seq, seq)
        return gw


class SeqTracker:
    """Remembers which (gateway, seq) pairs were seen."""

    def __init__(self) -> None:
        self._gateways: dict[str, _Gateway] = {}

    def _gateway(self, gateway: str) -> _Gateway:
        gw = self._gateways.get(gateway)
        if gw is None:
            gw = self._gateways[gateway] = _Gateway()
        return gw

    def first_time(self, gateway: str, seq: int) -> bool:
        """True the first time (gateway, seq) is seen, False for a redelivery."""
        gw = self._gateways.get(gateway) or self._gateway(gateway)
        if seq == gw.watermark + 1 and not gw.starts:
            gw.watermark = seq  # the common case, what seen() and add() come to: the next one
            return True
        if gw.seen(seq):
            return False
        gw.add(seq, seq)
        return True

    def seen_ranges(self, gateway: str, ranges: Iterable[tuple[int, int]]) -> None:
        """Mark inclusive ranges seen (the numbers a drop record names): O(ranges)."""
        gw = self._gateway(gateway)
        for first, last in ranges:
            gw.add(first, last)

    def gaps(self, gateway: str) -> list[tuple[int, int]]:
        """Inclusive ranges not seen yet below the highest number seen."""
        gw = self._gateways.get(gateway)
        return [] if gw is None else gw.gaps()

    def lost(self, gateway: str) -> int:
        """Numbers given up as lost because too many gaps were open at once."""
        gw = self._gateways.get(gateway)
        return 0 if gw is None else gw.lost

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state, for persisting beside what was processed (see the module doc)."""
        return {g: s.state() for g, s in self._gateways.items()}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> SeqTracker:
        """The tracker a :meth:`snapshot` describes (either checkpoint format)."""
        tracker = cls()
        for g, s in state.items():
            tracker._gateways[g] = _Gateway.from_state(s)
        return tracker
