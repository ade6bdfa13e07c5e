"""Per-bus counters."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class BusStats:
    """What one bus has seen and done. ``sims.stats(bus)`` returns a copy."""

    requests: int = 0
    """Complete, well-formed request frames (any unit)."""
    replies: int = 0
    """Replies sent, exceptions included."""
    exceptions_sent: int = 0
    crc_errors_received: int = 0
    """Request frames dropped for a bad CRC / checksum."""
    crc_errors_sent: int = 0
    """Replies deliberately sent with a corrupted CRC / checksum (fault ``crc``)."""
    no_reply: int = 0
    """Requests left unanswered: unknown unit, fault ``silent``."""
    junk_bytes: int = 0
    """Bytes discarded as unparseable."""

    def copy(self) -> BusStats:
        """A snapshot."""
        return BusStats(**{name: getattr(self, name) for name in self.__slots__})
