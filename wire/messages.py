"""Payload types of the contract and their JSON encoding.

Every sequenced message (data, event, dropped) carries the schema version ``v``, the gateway
id ``gw``, a per-gateway sequence number ``seq`` that increases by one per message and
survives restarts, the event time ``ts`` (unix seconds from the gateway clock) and a quality
``q``. ``(gw, seq)`` identifies a message: a consumer that sees every ``seq`` from 1 upwards
(or a drop record naming the missing ones) has lost nothing; seeing one twice is a redelivery.
"""

from __future__ import annotations

import enum
import functools
import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from wire.errors import WireError
from wire.topics import ID_PATTERN, Topic, TopicKind, parse_topic

SCHEMA_VERSION = 1
_T = TypeVar("_T")
MAX_PAYLOAD_BYTES = 64 * 1024
# The most messages a gateway's outbox may hold (edge's ``outbox.max_messages`` is capped by
# it). A drop record names numbers that were in the outbox, so it never names more than this.
MAX_OUTBOX_MESSAGES = 10_000_000
# The most ranges one drop record may carry; the outbox splits a larger drop into several
# records. 1,000 ranges of 19-digit numbers encode to ~42 KB, inside MAX_PAYLOAD_BYTES.
MAX_DROP_RANGES = 1_000

Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
Seq = Annotated[int, msgspec.Meta(ge=1)]
NAME_MAX = 64
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
Value = float | int | bool


class Quality(enum.StrEnum):
    """How far a value can be trusted."""

    GOOD = "good"  # read from the device in this poll
    STALE = "stale"  # last good value, older than the device's heartbeat
    COMM_ERROR = "comm_error"  # the device did not answer correctly; no values


class _Base(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class DataMessage(_Base, frozen=True, forbid_unknown_fields=True, tag_field="t", tag="data"):
    """Measurements of one device from one poll (several readings in one message)."""

    gw: Id
    dev: Id
    seq: Seq
    ts: float
    q: Quality = Quality.GOOD
    values: dict[Name, Value] = {}
    # measurements read but outside the profile's valid range (garbage); withheld from values
    invalid: list[Name] = []
    v: int = SCHEMA_VERSION

    @property
    def readings(self) -> int:
        return len(self.values)


class EventMessage(_Base, frozen=True, forbid_unknown_fields=True, tag_field="t", tag="event"):
    """A discrete event: status-bit edge, test button, tamper, e-bike detected."""

    gw: Id
    dev: Id
    seq: Seq
    ts: float
    event: Name
    # True: condition began; False: condition ended; None: momentary (a detection, a press)
    active: bool | None = None
    q: Quality = Quality.GOOD
    values: dict[Name, Value] = {}
    v: int = SCHEMA_VERSION


class DropRecord(_Base, frozen=True, forbid_unknown_fields=True, tag_field="t", tag="dropped"):
    """Sequence numbers the gateway dropped under its outbox policy (telemetry only).

    A consumer that finds a gap covered by a drop record knows it is policy, not loss.
    ``ranges``: at most MAX_DROP_RANGES inclusive pairs, ascending and disjoint, each
    ``1 <= first <= last < seq``, naming at most MAX_OUTBOX_MESSAGES numbers in all
    (:func:`check_drop_record`; decoding refuses anything else).
    """

    gw: Id
    seq: Seq
    ts: float
    ranges: list[tuple[int, int]]  # inclusive [first, last] pairs
    reason: str = "outbox_full"
    q: Quality = Quality.GOOD
    v: int = SCHEMA_VERSION

    def dropped_count(self) -> int:
        return sum(last - first + 1 for first, last in self.ranges)


SequencedMessage = DataMessage | EventMessage | DropRecord


def check_drop_record(record: DropRecord) -> None:
    """Refuse ranges no gateway's outbox can have dropped (WireError reason ``drop_ranges``).

    The bounds keep a consumer's work per record small: it handles ranges, never numbers.
    """
    ranges = record.ranges
    if len(ranges) > MAX_DROP_RANGES:
        raise WireError(
            f"drop record with {len(ranges)} ranges exceeds {MAX_DROP_RANGES}", "drop_ranges"
        )
    previous = 0
    for i, (first, last) in enumerate(ranges):
        if not previous < first <= last < record.seq:
            raise WireError(
                f"drop record range {i} [{first}, {last}] is not ascending, disjoint and"
                f" within 1..{record.seq - 1} (below the record's own seq)",
                "drop_ranges",
            )
        previous = last
    count = record.dropped_count()
    if count > MAX_OUTBOX_MESSAGES:
        raise WireError(
            f"drop record names {count} numbers, more than an outbox holds ({MAX_OUTBOX_MESSAGES})",
            "drop_ranges",
        )


class GatewayStatus(_Base, frozen=True, forbid_unknown_fields=True):
    """Retained gateway status: the birth message says online, the last will offline."""

    gw: Id
    state: Literal["online", "offline"]
    ts: float
    software: str = ""
    devices: int = 0
    v: int = SCHEMA_VERSION


CommandName = Literal["ping", "read-now", "write-register", "reload-config"]


class Command(_Base, frozen=True, forbid_unknown_fields=True):
    """A command from the cloud to a gateway."""

    id: Id
    cmd: CommandName
    ts: float
    args: dict[str, Any] = {}
    v: int = SCHEMA_VERSION


class CommandReply(_Base, frozen=True, forbid_unknown_fields=True):
    """The gateway's answer to one command."""

    gw: Id
    id: Id
    ok: bool
    ts: float
    result: dict[str, Any] = {}
    error: str = ""
    v: int = SCHEMA_VERSION


_KIND: dict[type[SequencedMessage], TopicKind] = {
    DataMessage: TopicKind.DATA,
    EventMessage: TopicKind.EVENT,
    DropRecord: TopicKind.DROPPED,
}
_encoder = msgspec.json.Encoder()
_seq_decoder: msgspec.json.Decoder[SequencedMessage] = msgspec.json.Decoder(SequencedMessage)


class _LooseData(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="t", tag="data"
):
    """DataMessage's fields without the ids' pattern, for ``_decode_fast``.

    The sequence's floor and the invalid names' lengths msgspec checks in C at little cost.
    The measurement names are plain ``str`` keys: msgspec then takes them from its cache of
    short keys (one string per name, its hash kept) instead of a new string to hash for each
    reading — constrained keys bypass that cache. Their lengths are checked after decoding,
    once per name ever seen (``_names_fit``).
    """

    gw: str
    dev: str
    seq: Seq
    ts: float
    q: Quality = Quality.GOOD
    values: dict[str, Value] = {}
    invalid: list[Name] = []
    v: int = SCHEMA_VERSION


_loose_decoder: msgspec.json.Decoder[_LooseData | EventMessage | DropRecord] = msgspec.json.Decoder(
    _LooseData | EventMessage | DropRecord
)
_ID = re.compile(ID_PATTERN)


@functools.lru_cache(maxsize=1 << 16)  # a district's ids; more only cost the regex again
def _is_id(value: str) -> bool:
    return _ID.search(value) is not None  # how msgspec applies a pattern


_NAMES_FIT: set[str] = set()  # measurement names known to satisfy Name
_NAMES_KEPT = 1 << 14  # a district's names; more are checked every time


def _names_fit(values: dict[str, Value]) -> bool:
    """Whether every key of *values* is a Name (1-64 characters), as msgspec would check."""
    if _NAMES_FIT.issuperset(values):  # one C call for the usual message
        return True
    for name in values:
        if not 1 <= len(name) <= NAME_MAX:
            return False
        if len(_NAMES_FIT) < _NAMES_KEPT:
            _NAMES_FIT.add(name)
    return True


def _decode_fast(payload: bytes) -> SequencedMessage | None:
    """The message *payload* holds if the strict decoder would accept it, else None.

    msgspec checks the ids' pattern value by value, which doubles the cost of decoding a data
    message, so data are decoded without it and the ids checked here against a cache. Events
    and drop records are decoded by their own types, checks and all. A valid message comes
    out the same; anything else returns None and the strict decoder gives its verdict in its
    own words.
    """
    try:
        m = _loose_decoder.decode(payload)
    except msgspec.DecodeError:  # ValidationError too
        return None
    if m.v != SCHEMA_VERSION:
        return None
    if type(m) is not _LooseData:
        return m  # type: ignore[return-value] # an EventMessage or a DropRecord
    if not (_is_id(m.gw) and _is_id(m.dev) and _names_fit(m.values)):
        return None
    return DataMessage(m.gw, m.dev, m.seq, m.ts, m.q, m.values, m.invalid, m.v)


_DATA_KIND = TopicKind.DATA  # a module global: an enum member's lookup costs more per message


def decode_vouched(t: Topic, payload: bytes) -> DataMessage | None:
    """The data message on *t*, if *t* is a data topic ``parse_topic`` checked and the
    payload is valid and names the topic's gateway and device (their pattern the topic's
    check vouches for; nothing is left to check against the topic); else None, and
    ``decode_sequenced`` gives the verdict.

    The message carries the topic's id strings, equal to the payload's: a caller that keeps
    its parsed topics hands on strings whose hash is already known to every dict lookup by
    gateway and device downstream, instead of new ones to hash.
    """
    if not (t.checked and t.kind is _DATA_KIND) or len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        m = _loose_decoder.decode(payload)
    except msgspec.DecodeError:  # ValidationError too
        return None
    if (
        type(m) is _LooseData
        and m.gw == t.gateway
        and m.dev == t.device
        and m.v == SCHEMA_VERSION
        and _names_fit(m.values)
    ):
        return DataMessage(t.gateway, t.device, m.seq, m.ts, m.q, m.values, m.invalid, m.v)
    return None


_status_decoder = msgspec.json.Decoder(GatewayStatus)
_command_decoder = msgspec.json.Decoder(Command)
_reply_decoder = msgspec.json.Decoder(CommandReply)


def encode(message: SequencedMessage | GatewayStatus | Command | CommandReply) -> bytes:
    """Encode any contract message as compact JSON bytes."""
    return _encoder.encode(message)


def _decode(decoder: msgspec.json.Decoder[_T], payload: bytes) -> _T:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}", "too_large")
    try:
        message = decoder.decode(payload)
    except msgspec.ValidationError as err:
        raise WireError(f"invalid payload: {err}") from err
    except msgspec.DecodeError as err:
        raise WireError(f"malformed JSON: {err}", "json") from err
    if getattr(message, "v", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise WireError(f"unsupported schema version {message.v}", "version")  # type: ignore[attr-defined]
    return message


def decode_sequenced(topic: str | Topic, payload: bytes) -> SequencedMessage:
    """Decode a data / event / dropped payload and check it against its topic.

    The payload's gateway and device must be the topic's (a gateway may only speak for
    itself), and the message kind must match the topic kind.
    """
    t = parse_topic(topic) if isinstance(topic, str) else topic
    message: SequencedMessage | None = None
    if len(payload) <= MAX_PAYLOAD_BYTES:
        vouched = decode_vouched(t, payload)  # the usual message: one decode, done
        if vouched is not None:
            return vouched
        message = _decode_fast(payload)
    if message is None:
        message = _decode(_seq_decoder, payload)
    if message.gw != t.gateway:
        raise WireError(
            f"payload gateway {message.gw!r} differs from topic gateway {t.gateway!r}", "spoofed"
        )
    kind = type(message)
    if _KIND[kind] is not t.kind:
        raise WireError(
            f"a {kind.__name__} does not belong on a {t.kind.value} topic", "wrong_kind"
        )
    if isinstance(message, DropRecord):
        check_drop_record(message)
    elif message.dev != t.device:
        raise WireError(
            f"payload device {message.dev!r} differs from topic device {t.device!r}", "spoofed"
        )
    return message


def decode_status(topic: str | Topic, payload: bytes) -> GatewayStatus:
    """Decode a retained status payload and check its gateway against the topic."""
    t = parse_topic(topic) if isinstance(topic, str) else topic
    status = _decode(_status_decoder, payload)
    if status.gw != t.gateway:
        raise WireError(
            f"status gateway {status.gw!r} differs from topic gateway {t.gateway!r}", "spoofed"
        )
    return status


def decode_command(payload: bytes) -> Command:
    return _decode(_command_decoder, payload)


def decode_reply(payload: bytes) -> CommandReply:
    return _decode(_reply_decoder, payload)
