"""Prometheus metrics of the cloud worker: message rates, lag, bad messages, decisions."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600)


class Metrics:
    """One registry per worker (tests run several in one process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.messages = Counter(
            "gridalarm_messages", "Wire messages received", ["kind"], registry=r
        )
        self.readings = Counter("gridalarm_readings", "Measurement values ingested", registry=r)
        self.bad = Counter(
            "gridalarm_bad_messages", "Messages refused, by reason", ["reason"], registry=r
        )
        self.duplicates = Counter(
            "gridalarm_duplicates", "Redelivered (gateway, seq) dropped", registry=r
        )
        self.transitions = Counter(
            "gridalarm_transitions", "Rule transitions", ["kind"], registry=r
        )
        self.decision = Histogram(
            "gridalarm_decision_seconds",
            "Arrival to rule decision",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Histogram(
            "gridalarm_lag_seconds",
            "Arrival time minus event time",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.open_alarms = Gauge("gridalarm_open_alarms", "Open alarms", registry=r)
        self.sink_buffered = Gauge(
            "gridalarm_sink_buffered", "Readings waiting for the sink", registry=r
        )
        self.sink_dropped = Gauge("gridalarm_sink_dropped", "Readings the sink dropped", registry=r)
        self.checkpoints = Counter("gridalarm_checkpoints", "Committed checkpoints", registry=r)

    def count_from(self, counts: Callable[[], Mapping[str, int]]) -> None:
        """Export the ingest's own counters (kept as plain ints: cheaper per message)."""
        self.registry.register(_Counts(counts))


class _Counts(Collector):
    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        counts = self._counts()
        messages = CounterMetricFamily(
            "gridalarm_messages", "Wire messages processed", labels=["kind"]
        )
        for kind in ("data", "event", "dropped_records", "status"):
            messages.add_metric([kind], counts.get(kind, 0))
        yield messages
        yield CounterMetricFamily(
            "gridalarm_readings", "Measurement values ingested", value=counts.get("readings", 0)
        )
