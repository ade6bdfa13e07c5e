"""The cloud: ingest, registry, rules into alarms, time-series sinks, record and replay."""
