"""deploy/asyncapi.yaml is true to wire/: same topics, same fields, examples the code accepts."""

from __future__ import annotations

import json
import re
import typing
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from wire import messages, topics
from wire.messages import (
    SCHEMA_VERSION,
    Command,
    CommandReply,
    DataMessage,
    DropRecord,
    EventMessage,
    GatewayStatus,
    Quality,
    decode_command,
    decode_reply,
    decode_sequenced,
    decode_status,
    encode,
)

SPEC = Path(__file__).resolve().parents[2] / "deploy" / "asyncapi.yaml"

STRUCTS: dict[str, type[msgspec.Struct]] = {
    "DataMessage": DataMessage,
    "EventMessage": EventMessage,
    "DropRecord": DropRecord,
    "GatewayStatus": GatewayStatus,
    "Command": Command,
    "CommandReply": CommandReply,
}


@cache
def spec() -> dict[str, Any]:
    return typing.cast(dict[str, Any], yaml.safe_load(SPEC.read_text(encoding="utf-8")))


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_document_header() -> None:
    doc = spec()
    assert doc["asyncapi"].startswith("3.")
    assert doc["info"]["version"] == str(SCHEMA_VERSION)


@pytest.mark.parametrize(
    ("channel", "address"),
    [
        ("status", topics.status_topic("{gateway}")),
        ("data", topics.data_topic("{gateway}", "{device}")),
        ("event", topics.event_topic("{gateway}", "{device}")),
        ("dropped", topics.dropped_topic("{gateway}")),
        ("command", topics.command_topic("{gateway}", "{commandId}")),
        ("reply", topics.reply_topic("{gateway}", "{commandId}")),
    ],
)
def test_channel_addresses_are_the_wire_topics(channel: str, address: str) -> None:
    assert spec()["channels"][channel]["address"] == address


def test_every_channel_is_covered() -> None:
    assert set(spec()["channels"]) == {"status", "data", "event", "dropped", "command", "reply"}
    assert len(topics.TopicKind) == 6


def test_qos_1_everywhere_and_only_status_retained() -> None:
    for name, op in spec()["operations"].items():
        mqtt = op["bindings"]["mqtt"]
        assert mqtt["qos"] == 1, name
        assert mqtt.get("retain", False) == (name == "sendStatus"), name


@pytest.mark.parametrize("name", sorted(STRUCTS))
def test_schema_fields_match_the_struct(name: str) -> None:
    struct = STRUCTS[name]
    schema = spec()["components"]["schemas"][name]
    fields = msgspec.structs.fields(struct)
    expected_props = {f.encode_name for f in fields}
    expected_required = {f.encode_name for f in fields if f.required}
    config = struct.__struct_config__
    if config.tag is not None:  # tagged union member: the tag field is required and constant
        expected_props.add(config.tag_field)
        expected_required.add(config.tag_field)
        assert schema["properties"][config.tag_field]["const"] == config.tag
    assert set(schema["properties"]) == expected_props
    assert set(schema["required"]) == expected_required
    assert schema["additionalProperties"] is False  # forbid_unknown_fields
    assert config.forbid_unknown_fields
    for f in fields:
        if not f.required:
            prop = _resolve(schema["properties"][f.encode_name])
            default = f.default if f.default is not msgspec.NODEFAULT else f.default_factory()
            assert prop.get("default") == json.loads(msgspec.json.encode(default)), f.name


def test_shared_schemas_match_the_code() -> None:
    schemas = spec()["components"]["schemas"]
    assert schemas["Quality"]["enum"] == [q.value for q in Quality]
    assert schemas["SchemaVersion"]["const"] == SCHEMA_VERSION
    assert schemas["Seq"]["minimum"] == 1
    id_meta = typing.get_args(messages.Id)[1]
    assert schemas["Id"]["pattern"] == id_meta.pattern
    assert re.fullmatch(schemas["Id"]["pattern"].strip("^$"), "gw-01")
    name_meta = typing.get_args(messages.Name)[1]
    assert (schemas["Name"]["minLength"], schemas["Name"]["maxLength"]) == (
        name_meta.min_length,
        name_meta.max_length,
    )
    ranges = schemas["DropRecord"]["properties"]["ranges"]
    assert ranges["maxItems"] == messages.MAX_DROP_RANGES
    assert f"{messages.MAX_DROP_RANGES:,}" in ranges["description"]
    assert f"{messages.MAX_OUTBOX_MESSAGES:,}" in ranges["description"]
    commands = schemas["Command"]["properties"]["cmd"]["enum"]
    assert commands == list(typing.get_args(messages.CommandName))
    state = typing.get_type_hints(GatewayStatus)["state"]
    assert schemas["GatewayStatus"]["properties"]["state"]["enum"] == list(typing.get_args(state))


def _examples() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for name, message in spec()["components"]["messages"].items():
        for example in message["examples"]:
            out.append((name, example["name"], example["payload"]))
    return out


@pytest.mark.parametrize(("message", "example", "payload"), _examples())
def test_examples_decode_and_reencode_identically(
    message: str, example: str, payload: dict[str, Any]
) -> None:
    raw = json.dumps(payload).encode()
    decoded: msgspec.Struct
    if message in ("DataMessage", "EventMessage"):
        decoded = decode_sequenced(topics.Topic(_kind(message), payload["gw"], payload["dev"]), raw)
    elif message == "DropRecord":
        decoded = decode_sequenced(topics.dropped_topic(payload["gw"]), raw)
    elif message == "GatewayStatus":
        decoded = decode_status(topics.status_topic(payload["gw"]), raw)
    elif message == "Command":
        decoded = decode_command(raw)
    else:
        decoded = decode_reply(raw)
    assert type(decoded) is STRUCTS[message]
    # the encoder writes every field: an example shows exactly what goes over the wire
    assert json.loads(encode(decoded)) == payload


def _kind(message: str) -> topics.TopicKind:
    return topics.TopicKind.DATA if message == "DataMessage" else topics.TopicKind.EVENT


def test_every_message_kind_has_an_example() -> None:
    assert {m for m, _, _ in _examples()} == set(STRUCTS)
