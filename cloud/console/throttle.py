"""Failed sign-ins slow an attacker down: after ``MAX_FAILURES`` wrong passwords for one name
or from one address within ``WINDOW_S``, that name or address waits until the window passes.
Kept in memory: a restart forgets, which only gives an attacker a few more tries."""

from __future__ import annotations

import collections
from collections.abc import Callable

MAX_FAILURES = 5  # per user name
MAX_FAILURES_PER_ADDRESS = 20  # a whole office may sign in from behind one address
WINDOW_S = 300.0
MAX_KEYS = 10_000  # forget the oldest beyond this: a flood of names cannot eat the memory


class SignInThrottle:
    """Counts failed sign-ins per key (a user name, a client address) in a sliding window."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._failures: collections.OrderedDict[str, list[float]] = collections.OrderedDict()

    def _recent(self, key: str) -> list[float]:
        cutoff = self._clock() - WINDOW_S
        times = [t for t in self._failures.get(key, []) if t > cutoff]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def blocked(self, name: str, address: str) -> bool:
        """Has this name or this address failed too often lately?"""
        return (
            len(self._recent(f"user:{name}")) >= MAX_FAILURES
            or len(self._recent(f"addr:{address}")) >= MAX_FAILURES_PER_ADDRESS
        )

    def failed(self, name: str, address: str) -> None:
        now = self._clock()
        for key in (f"user:{name}", f"addr:{address}"):
            self._failures.setdefault(key, []).append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, name: str) -> None:
        self._failures.pop(f"user:{name}", None)
