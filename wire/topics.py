"""Topic names of the contract.

Per gateway and per device, so broker ACLs can pin a gateway to ``ga/v1/{gateway}/#`` and a
broker can hash one device's messages to one worker::

    ga/v1/{gw}/status                  retained; birth "online", last will "offline"
    ga/v1/{gw}/dev/{device}/data       measurements
    ga/v1/{gw}/dev/{device}/event      discrete events
    ga/v1/{gw}/dropped                 sequence numbers the gateway dropped by policy
    ga/v1/{gw}/cmd/{command_id}        command to the gateway
    ga/v1/{gw}/cmd/{command_id}/reply  the gateway's reply
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from wire.errors import WireError

TOPIC_PREFIX = "ga/v1"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"  # gateway, device and command ids
_ID = re.compile(ID_PATTERN)


class TopicKind(enum.StrEnum):
    STATUS = "status"
    DATA = "data"
    EVENT = "event"
    DROPPED = "dropped"
    COMMAND = "cmd"
    REPLY = "reply"


# the kinds whose messages carry a gateway's sequence number (decode_sequenced)
SEQUENCED_KINDS = frozenset((TopicKind.DATA, TopicKind.EVENT, TopicKind.DROPPED))


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic: which gateway, which device or command, what kind."""

    kind: TopicKind
    gateway: str
    device: str | None = None
    command_id: str | None = None
    # made by parse_topic: its ids match ID_PATTERN (wire.messages trusts a payload naming them)
    checked: bool = field(default=False, compare=False, repr=False)

    def __str__(self) -> str:
        base = f"{TOPIC_PREFIX}/{self.gateway}"
        match self.kind:
            case TopicKind.STATUS | TopicKind.DROPPED:
                return f"{base}/{self.kind.value}"
            case TopicKind.DATA | TopicKind.EVENT:
                return f"{base}/dev/{self.device}/{self.kind.value}"
            case TopicKind.COMMAND:
                return f"{base}/cmd/{self.command_id}"
            case TopicKind.REPLY:
                return f"{base}/cmd/{self.command_id}/reply"


def check_id(value: str, what: str) -> str:
    """Return *value* if it is a valid gateway / device / command id, else raise WireError."""
    if not _ID.match(value):
        raise WireError(
            f"invalid {what} id {value!r}: 1-64 of A-Z a-z 0-9 _ . - , not starting with a symbol",
            "topic",
        )
    return value


def status_topic(gateway: str) -> str:
    return f"{TOPIC_PREFIX}/{gateway}/status"


def data_topic(gateway: str, device: str) -> str:
    return f"{TOPIC_PREFIX}/{gateway}/dev/{device}/data"


def event_topic(gateway: str, device: str) -> str:
    return f"{TOPIC_PREFIX}/{gateway}/dev/{device}/event"


def dropped_topic(gateway: str) -> str:
    return f"{TOPIC_PREFIX}/{gateway}/dropped"


def command_topic(gateway: str, command_id: str) -> str:
    return f"{TOPIC_PREFIX}/{gateway}/cmd/{command_id}"


def reply_topic(gateway: str, command_id: str) -> str:
    return f"{TOPIC_PREFIX}/{gateway}/cmd/{command_id}/reply"


def gateway_filter(gateway: str = "+") -> str:
    """Subscription filter for everything one gateway (or, with '+', every gateway) sends."""
    return f"{TOPIC_PREFIX}/{gateway}/#"


def parse_topic(topic: str) -> Topic:
    """Parse a contract topic; raise WireError for anything else."""
    parts = topic.split("/")
    if len(parts) < 4 or f"{parts[0]}/{parts[1]}" != TOPIC_PREFIX:
        raise WireError(f"not a {TOPIC_PREFIX} topic: {topic!r}", "topic")
    gw = check_id(parts[2], "gateway")
    rest = parts[3:]
    match rest:
        case ["status"]:
            return Topic(TopicKind.STATUS, gw, checked=True)
        case ["dropped"]:
            return Topic(TopicKind.DROPPED, gw, checked=True)
        case ["dev", device, ("data" | "event") as kind]:
            return Topic(TopicKind(kind), gw, device=check_id(device, "device"), checked=True)
        case ["cmd", cid]:
            return Topic(TopicKind.COMMAND, gw, command_id=check_id(cid, "command"), checked=True)
        case ["cmd", cid, "reply"]:
            return Topic(TopicKind.REPLY, gw, command_id=check_id(cid, "command"), checked=True)
    raise WireError(f"unknown topic shape: {topic!r}", "topic")
