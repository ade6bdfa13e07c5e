"""Errors of the wire contract."""


class WireError(ValueError):
    """A topic or payload that does not follow the contract; the message says what is wrong.

    ``reason`` is a short stable label for counters: topic, too_large, json, schema, version,
    spoofed (payload ids differ from the topic's), wrong_kind, drop_ranges (a drop record
    naming numbers no outbox can have dropped).
    """

    def __init__(self, message: str, reason: str = "schema") -> None:
        super().__init__(message)
        self.reason = reason
