"""The edge gateway: reads field buses, publishes the wire contract over MQTT, loses nothing."""

from edge.errors import EdgeError

__all__ = ["EdgeError"]
