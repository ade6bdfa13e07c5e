"""What a sink stores (one reading of one device), what it reports, and the interface."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

FieldValue = float | int | bool


class Point(NamedTuple):
    """One reading of one device at its event time (a tuple: one is made per message)."""

    measurement: str
    """The device type: smoke, ebike, manhole, flood."""
    device: str
    gateway: str
    grid: str
    ts: float
    """Event time, unix seconds."""
    fields: Mapping[str, FieldValue]


@dataclass(slots=True)
class SinkStats:
    """Counters a sink keeps; read them for metrics."""

    submitted: int = 0
    """Points handed to submit()."""
    written: int = 0
    """Points the storage confirmed."""
    dropped: int = 0
    """Points given up: the oldest when the buffer overflowed, or rejected as malformed."""
    buffered: int = 0
    """Points accepted and not yet written or dropped (queued plus in flight)."""
    errors: int = 0
    """Failed write attempts."""
    last_error: str | None = None
    last_write_ts: float | None = None
    """Wall-clock time of the last confirmed write."""


class SinkError(Exception):
    """A sink cannot be set up (bad path, bad URL). Write trouble is never raised, only counted."""


class ReadingSink(Protocol):
    """Where readings go after ingest: buffered, written in batches by a background task."""

    stats: SinkStats

    @property
    def available(self) -> bool:
        """False while the storage is failing (points are being buffered)."""

    def submit(self, points: Sequence[Point]) -> None:
        """Queue *points*; never blocks, never raises for storage trouble (call on the loop)."""

    async def run(self) -> None:
        """The background writer; runs until cancelled."""

    async def flush(self, timeout_s: float) -> bool:
        """Write everything buffered now; True if nothing is left buffered at the end."""

    async def aclose(self) -> None:
        """Release the storage; buffered points not yet written are lost (logged)."""
