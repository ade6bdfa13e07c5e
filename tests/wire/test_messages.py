"""The wire contract: round trips, topic checks, and garbage refused with a clear error."""

from __future__ import annotations

import pytest

from wire import (
    Command,
    CommandReply,
    DataMessage,
    EventMessage,
    GatewayStatus,
    Quality,
    TopicKind,
    WireError,
    decode_command,
    decode_reply,
    decode_sequenced,
    decode_status,
    encode,
    parse_topic,
)
from wire.topics import data_topic, event_topic, reply_topic, status_topic


def test_data_round_trip_keeps_types() -> None:
    msg = DataMessage(
        gw="gw-1", dev="smk-1", seq=7, ts=1.5, values={"t": -10.0, "n": 3, "alarm": True}
    )
    back = decode_sequenced(data_topic("gw-1", "smk-1"), encode(msg))
    assert back == msg
    assert isinstance(back, DataMessage)
    assert back.values["alarm"] is True
    assert back.readings == 3


def test_event_round_trip() -> None:
    msg = EventMessage(gw="gw-1", dev="smk-1", seq=8, ts=2.0, event="smoke_alarm", active=True)
    assert decode_sequenced(event_topic("gw-1", "smk-1"), encode(msg)) == msg


@pytest.mark.parametrize(
    ("topic", "payload", "error"),
    [
        ("ga/v1/gw-2/dev/smk-1/data", None, "differs from topic gateway"),
        ("ga/v1/gw-1/dev/smk-2/data", None, "differs from topic device"),
        ("ga/v1/gw-1/dev/smk-1/event", None, "does not belong"),
        ("ga/v1/gw-1/dev/smk-1/data", b"{not json", "malformed JSON"),
        (
            "ga/v1/gw-1/dev/smk-1/data",
            b'{"t":"data","gw":"gw-1","dev":"smk-1","seq":0,"ts":1}',
            "invalid payload",
        ),
        (
            "ga/v1/gw-1/dev/smk-1/data",
            b'{"t":"data","gw":"gw-1","dev":"smk-1","seq":"x","ts":1}',
            "invalid payload",
        ),
        (
            "ga/v1/gw-1/dev/smk-1/data",
            b'{"t":"data","gw":"gw-1","dev":"smk-1","seq":1,"ts":1,"v":2}',
            "schema version",
        ),
        ("ga/v1/gw-1/dev/smk-1/data", b"x" * 70000, "exceeds"),
        ("ga/v1/gw-1/dev/smk 1/data", None, "invalid device id"),
        ("other/topic", None, "not a ga/v1 topic"),
    ],
)
def test_bad_messages_are_refused(topic: str, payload: bytes | None, error: str) -> None:
    if payload is None:
        payload = encode(DataMessage(gw="gw-1", dev="smk-1", seq=1, ts=1.0))
    with pytest.raises(WireError, match=error):
        decode_sequenced(topic, payload)


def test_status_command_reply() -> None:
    st = GatewayStatus(gw="gw-1", state="offline", ts=3.0)
    assert decode_status(status_topic("gw-1"), encode(st)) == st
    with pytest.raises(WireError):
        decode_status(status_topic("gw-9"), encode(st))
    cmd = Command(id="c1", cmd="read-now", ts=1.0, args={"device": "smk-1"})
    assert decode_command(encode(cmd)) == cmd
    with pytest.raises(WireError):
        decode_command(b'{"id":"c1","cmd":"format-disk","ts":1}')
    rep = CommandReply(gw="gw-1", id="c1", ok=True, ts=1.0, result={"pong": True})
    assert decode_reply(encode(rep)) == rep


def test_topics_parse_and_print() -> None:
    for text, kind in [
        ("ga/v1/gw-1/status", TopicKind.STATUS),
        ("ga/v1/gw-1/dropped", TopicKind.DROPPED),
        ("ga/v1/gw-1/dev/d1/data", TopicKind.DATA),
        ("ga/v1/gw-1/cmd/c1", TopicKind.COMMAND),
        (reply_topic("gw-1", "c1"), TopicKind.REPLY),
    ]:
        t = parse_topic(text)
        assert t.kind is kind
        assert str(t) == text
    assert Quality("comm_error") is Quality.COMM_ERROR
