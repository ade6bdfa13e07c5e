"""Time-series sinks: where readings go after ingest, buffered within a bound.

SqliteSink is the embedded default (demo, recent-history queries); InfluxSink writes to
InfluxDB v2 (or VictoriaMetrics) through influxdb-client. Neither ever makes ingest, rule
evaluation or alarms wait: submit() only queues, a background task writes.
"""

from cloud.sinks.influx import InfluxSink
from cloud.sinks.point import FieldValue, Point, ReadingSink, SinkError, SinkStats
from cloud.sinks.sqlite import SqliteSink

__all__ = [
    "FieldValue",
    "InfluxSink",
    "Point",
    "ReadingSink",
    "SinkError",
    "SinkStats",
    "SqliteSink",
]
