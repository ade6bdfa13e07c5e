"""Data messages are decoded without msgspec's per-value checks, then checked: same verdicts.

Every payload must come out of ``decode_sequenced`` exactly as the strict decoder (the
contract's types, constraints and all) has it: the same message, or the same error.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import DataMessage, SequencedMessage, WireError, decode_sequenced
from wire.messages import _decode, _decode_fast, _LooseData
from wire.topics import Topic, TopicKind, parse_topic

_strict: msgspec.json.Decoder[SequencedMessage] = msgspec.json.Decoder(SequencedMessage)
_GOOD = {"t": "data", "gw": "gw-1", "dev": "smk-1", "seq": 3, "ts": 1.5, "values": {"a": 1}}


def _verdict(decode: Any, payload: bytes) -> object:
    try:
        return decode(payload)
    except WireError as err:
        return (err.reason, str(err))


def _check(payload: dict[str, Any]) -> None:
    raw = msgspec.json.encode(payload)
    strict = _verdict(lambda p: _decode(_strict, p), raw)
    fast = _decode_fast(raw)
    if fast is not None:
        assert type(fast) is type(strict)
        assert fast == strict
    topics = [Topic(TopicKind.DATA, str(payload.get("gw")), str(payload.get("dev")))]
    with contextlib.suppress(WireError):  # parse_topic's topic: a payload naming its ids
        topics.append(parse_topic(f"ga/v1/{payload.get('gw')}/dev/{payload.get('dev')}/data"))
    for topic in topics:
        got = _verdict(lambda p, topic=topic: decode_sequenced(topic, p), raw)
        if isinstance(strict, tuple):  # refused by the strict decoder: refused in its words
            assert got == strict
        elif isinstance(got, tuple):  # accepted, then checked against the topic
            assert got[0] in {"spoofed", "wrong_kind"}
        else:
            assert got == strict


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"values": {}},
        {"values": {"x" * 64: 1.0, "é" * 64: True, "😀": 2}},
        {"values": {"x" * 65: 1.0}},
        {"values": {"": 1.0}},
        {"invalid": ["pm25"]},
        {"invalid": [""]},
        {"invalid": ["y" * 65]},
        {"gw": "gw 1"},
        {"dev": "-smk"},
        {"dev": "d" * 65},
        {"dev": "smk-1\n"},
        {"seq": 0},
        {"seq": -5},
        {"v": 2},
        {"q": "stale"},
        {"q": "bad"},
        {"extra": 1},
        {"values": {"a": "text"}},
        {"values": {"a": None}},
        {"ts": "x"},
        {"t": "event", "event": "smoke_alarm"},
        {"t": "event", "event": ""},
    ],
)
def test_decoded_as_the_strict_decoder_has_it(change: dict[str, Any]) -> None:
    _check({**_GOOD, **change})


def test_a_valid_data_message_takes_the_fast_path() -> None:
    assert _decode_fast(msgspec.json.encode(_GOOD)) is not None
    assert _decode_fast(b"{not json") is None


def test_only_a_topic_parse_topic_made_vouches_for_the_ids() -> None:
    raw = msgspec.json.encode({**_GOOD, "gw": "gw 1"})
    made = Topic(TopicKind.DATA, "gw 1", "smk-1")
    assert not made.checked
    with pytest.raises(WireError, match=r"matching regex .* at `\$.gw`"):
        decode_sequenced(made, raw)
    assert parse_topic("ga/v1/gw-1/dev/smk-1/data").checked
    assert parse_topic("ga/v1/gw-1/dev/smk-1/data") == Topic(TopicKind.DATA, "gw-1", "smk-1")


_text = st.one_of(
    st.sampled_from(["", "a", "gw-1", "x" * 64, "x" * 65, "é" * 64]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=70),
)
_scalar = st.one_of(st.floats(allow_nan=False), st.integers(-(2**63), 2**63 - 1), st.booleans())


@settings(max_examples=300, deadline=None)
@given(
    gw=_text,
    dev=_text,
    seq=st.integers(-3, 2**63 - 1),
    values=st.dictionaries(_text, _scalar, max_size=6),
    invalid=st.lists(_text, max_size=3),
    v=st.sampled_from([1, 1, 1, 2]),
)
def test_any_data_payload_gets_the_strict_verdict(
    gw: str, dev: str, seq: int, values: dict[str, Any], invalid: list[str], v: int
) -> None:
    _check(
        {
            "t": "data",
            "gw": gw,
            "dev": dev,
            "seq": seq,
            "ts": 1.0,
            "values": values,
            "invalid": invalid,
            "v": v,
        }
    )


def test_the_loose_twin_has_the_data_message_fields() -> None:
    def shape(cls: type[msgspec.Struct]) -> list[tuple[str, object]]:
        return [(f.name, f.default) for f in msgspec.structs.fields(cls)]

    assert shape(_LooseData) == shape(DataMessage)
    assert _LooseData.__struct_config__.tag == DataMessage.__struct_config__.tag
