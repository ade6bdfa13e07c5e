"""Errors of the wire contract."""


class WireError(ValueError):
    """A topic or payload that does not follow the contract; the message says what is wrong."""
