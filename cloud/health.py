"""Is the worker doing its job? Liveness, readiness and the faults that make it not ready.

Each part reports its own state (``mark``): the ingest connection, the checkpoint commits,
the alarm desk, the outbox sender. A state change is logged once — "not ready" with the
reason when it starts, "ready again" with how long it lasted when it ends — and exported as
Prometheus gauges, so a fault is visible on ``/readyz``, in the metrics and in the log, never
only in a traceback nobody reads. Probes add facts computed on demand (lag, outbox age).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

logger = logging.getLogger(__name__)

Probe = Callable[[], str | None]  # None: fine; else why not ready


@dataclass
class PartState:
    """One part's current state."""

    ok: bool
    reason: str
    since: float
    starting: bool = False  # not ready yet, not failed: its first "ready" is no recovery


class Health:
    """The readiness facts of one worker."""

    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._parts: dict[str, PartState] = {}
        self._probes: dict[str, Probe] = {}
        self._ready = Gauge(
            "gridalarm_ready", "1 when this part of the worker is doing its job", ["part"],
            registry=registry,
        )  # fmt: skip
        self._faults = Counter(
            "gridalarm_transient_faults", "Failed attempts that will be retried", ["part"],
            registry=registry,
        )  # fmt: skip
        # the parts only: a scrape must never wait on a probe (a probe may read the database)
        self._up = Gauge(
            "gridalarm_worker_ready", "1 when no part of the worker is in fault", registry=registry
        )
        self._up.set_function(lambda: 1.0 if self.ready(probes=False)[0] else 0.0)

    def expect(self, part: str, reason: str = "starting") -> None:
        """Declare a part that is not ready until it says so."""
        self._parts[part] = PartState(False, reason, self._clock(), starting=True)
        self._ready.labels(part).set(0)

    def forget(self, part: str) -> None:
        """A part that is gone on purpose (a partition handed to another worker)."""
        if self._parts.pop(part, None) is not None:
            self._ready.remove(part)

    def probe(self, name: str, probe: Probe) -> None:
        """Add a fact computed when readiness is asked for."""
        self._probes[name] = probe

    def mark(self, part: str, ok: bool, reason: str = "") -> None:
        """Record a part's state; log only when it changes."""
        now = self._clock()
        old = self._parts.get(part)
        if not ok:
            self._faults.labels(part).inc()
        first_fault = old is not None and old.starting and not ok
        if old is not None and old.ok == ok and not first_fault:
            if not ok:
                old.reason = reason
            return
        self._parts[part] = PartState(ok, reason, old.since if first_fault and old else now)
        self._ready.labels(part).set(1 if ok else 0)
        if not ok:
            logger.error("%s: not ready: %s", part, reason)
        elif old is not None and not old.starting:
            logger.warning("%s: ready again after %.1f s (%s)", part, now - old.since, old.reason)

    def ready(self, *, probes: bool = True) -> tuple[bool, dict[str, str]]:
        """(ready?, each part and probe → "ok" or why not); *probes*: False skips the probes,
        which may block on the database, and answers at once."""
        out = {name: "ok" if s.ok else s.reason for name, s in self._parts.items()}
        for name, probe in self._probes.items() if probes else ():
            try:
                why = probe()
            except Exception as err:  # noqa: BLE001 - a failing probe says so; /readyz answers
                why = f"{type(err).__name__}: {err}"
            out[name] = why or "ok"
        return all(v == "ok" for v in out.values()), out
