"""Twilio's inbound webhook: signature check through twilio's validator, reply parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from cloud.notify import Reply, parse_reply, verify_twilio_signature

TOKEN = "12345678901234567890123456789012"
URL = "https://jd.example.cn/twilio/sms?site=yecuo"
PARAMS = {"From": "+8613800000001", "To": "+15005550006", "Body": "1", "MessageSid": "SM1"}


def _twilio_sign(url: str, params: dict[str, str], token: str) -> str:
    """Twilio's documented recipe, written out independently of the library."""
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_valid_signature() -> None:
    assert verify_twilio_signature(URL, PARAMS, _twilio_sign(URL, PARAMS, TOKEN), TOKEN)


@pytest.mark.parametrize(
    ("url", "params", "signature"),
    [
        (URL, {**PARAMS, "Body": "2"}, _twilio_sign(URL, PARAMS, TOKEN)),  # body changed
        (URL + "&x=1", PARAMS, _twilio_sign(URL, PARAMS, TOKEN)),  # url changed
        (URL, PARAMS, _twilio_sign(URL, PARAMS, "another-token")),  # someone else's key
        (URL, PARAMS, ""),
        (URL, PARAMS, None),
        (URL, PARAMS, "not base64 at all"),
    ],
)
def test_invalid_signature(url: str, params: dict[str, str], signature: str | None) -> None:
    assert not verify_twilio_signature(url, params, signature, TOKEN)


@pytest.mark.parametrize("empty", ["", " "])
def test_an_empty_key_verifies_nothing(empty: str) -> None:
    # With an empty key anyone can sign: such a "valid" signature must not count.
    assert not verify_twilio_signature(URL, PARAMS, _twilio_sign(URL, PARAMS, empty), empty)


@pytest.mark.parametrize(
    ("body", "reply"),
    [
        ("1", Reply.TAKE),
        (" 1 ", Reply.TAKE),
        ("１", Reply.TAKE),
        ("1接单", Reply.TAKE),
        ("接单", Reply.TAKE),
        ("１ 接单。", Reply.TAKE),
        ("Take", Reply.TAKE),
        ("1=take", Reply.TAKE),
        ("2", Reply.FALSE_ALARM),
        ("２", Reply.FALSE_ALARM),
        ("误报", Reply.FALSE_ALARM),
        ("2 误报！", Reply.FALSE_ALARM),
        ("3", Reply.NEED_HELP),
        ("３", Reply.NEED_HELP),
        ("求助", Reply.NEED_HELP),
        ("\n3\n", Reply.NEED_HELP),
        ("", Reply.UNKNOWN),
        ("   ", Reply.UNKNOWN),
        ("4", Reply.UNKNOWN),
        ("12", Reply.UNKNOWN),
        ("1误报", Reply.UNKNOWN),  # contradicts itself
        ("好的收到", Reply.UNKNOWN),
        ("ok", Reply.UNKNOWN),
    ],
)
def test_parse_reply(body: str, reply: Reply) -> None:
    assert parse_reply(body) is reply
