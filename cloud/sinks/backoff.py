"""Jittered exponential back-off for writers retrying an unavailable server."""

from __future__ import annotations

import random


class Backoff:
    """Delays of first_s, 2·first_s, … up to max_s, each with ±25 % jitter."""

    def __init__(self, first_s: float = 0.2, max_s: float = 15.0) -> None:
        self._first_s = first_s
        self._max_s = max_s
        self._attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles the base."""
        base = min(self._max_s, self._first_s * 2.0**self._attempt)
        self._attempt += 1
        return base * random.uniform(0.75, 1.25)

    def reset(self) -> None:
        """Start again from first_s after a success."""
        self._attempt = 0
