"""The edge↔cloud contract: topics, payload types, encode/decode. Pure: no I/O."""

from wire.errors import WireError
from wire.messages import (
    MAX_DROP_RANGES,
    MAX_OUTBOX_MESSAGES,
    SCHEMA_VERSION,
    Command,
    CommandReply,
    DataMessage,
    DropRecord,
    EventMessage,
    GatewayStatus,
    Quality,
    SequencedMessage,
    decode_command,
    decode_reply,
    decode_sequenced,
    decode_status,
    decode_vouched,
    encode,
)
from wire.topics import TOPIC_PREFIX, Topic, TopicKind, parse_topic

__all__ = [
    "MAX_DROP_RANGES",
    "MAX_OUTBOX_MESSAGES",
    "SCHEMA_VERSION",
    "TOPIC_PREFIX",
    "Command",
    "CommandReply",
    "DataMessage",
    "DropRecord",
    "EventMessage",
    "GatewayStatus",
    "Quality",
    "SequencedMessage",
    "Topic",
    "TopicKind",
    "WireError",
    "decode_command",
    "decode_reply",
    "decode_sequenced",
    "decode_status",
    "decode_vouched",
    "encode",
    "parse_topic",
]
