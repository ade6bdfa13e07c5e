"""Log redaction: masked numbers, no links or tokens, no control characters — in the helpers
and in the outbox sender's lines over a real outbox."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cloud.lifecycle import AlarmDesk, DeliveryError, OutboundMessage
from cloud.notify.redaction import escape, mask_phone, redact
from tests.cloud.test_lifecycle_fixtures import RankedDispatcher, change, commit, config
from tests.support import until

LINK = "https://alarm.example.cn/m/AbCdEfGhIjKlMnOpQrStUv"
PHONE = "+8613800000020"


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+8613800000020", "+86138****0020"),
        ("+86 138-0000-0020", "+86138****0020"),
        ("13800000020", "13800****0020"),
        ("+4477009", "+****09"),
        ("", "-"),
        (None, "-"),
        ("+86138\nINFO forged", "<not a phone number, 18 chars>"),
    ],
)
def test_mask_phone(number: str | None, masked: str) -> None:
    assert mask_phone(number) == masked


@pytest.mark.parametrize(
    ("text", "logged"),
    [
        (f"Twilio 400: The 'To' number {PHONE} is not valid", "+86138****0020"),
        (f"see {LINK} now", "see <link> now"),
        ("GET /m/AbCdEfGhIjKlMnOpQrStUv", "GET /m/<token>"),
        ("alarm 4821 step 2 status 503", "alarm 4821 step 2 status 503"),
        ("line\r\nforged\x1b[2J", "line\\x0d\\x0aforged\\x1b[2J"),
        ("a\u2028b\u202ec", "a\\u2028b\\u202ec"),
    ],
)
def test_redact(text: str, logged: str) -> None:
    assert logged in redact(text)
    assert "\n" not in redact(text) and "\r" not in redact(text)


def test_escape_keeps_text_and_cuts_long_lines() -> None:
    assert escape("疑似火警 a\\b") == "疑似火警 a\\\\b"
    assert escape("x" * 500, limit=10) == "x" * 10 + "…"


class FailingSender:
    """The lifecycle's Sender: a provider error naming the number and link, then a crash."""

    def __init__(self) -> None:
        self.calls: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> str | None:
        self.calls.append(message)
        if len(self.calls) == 1:
            raise DeliveryError(f"sms: Twilio 400: 'To' {PHONE} refused, {LINK}", retryable=False)
        raise RuntimeError(f"boom for {PHONE}\nat {LINK}")


def _assert_clean(records: list[logging.LogRecord]) -> None:
    for r in records:
        line = r.getMessage()
        traceback = logging.Formatter().formatException(r.exc_info) if r.exc_info else ""
        for text in (line, traceback):
            assert PHONE not in text and "13800000020" not in text, text
            assert "AbCdEfGhIjKlMnOpQrStUv" not in text and "https://" not in text, text
        assert "\n" not in line and "\r" not in line, line


async def test_outbox_sender_logs_no_number_link_or_control_character(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    cfg = config(
        policies__standard={"steps": [{"wait_s": 0, "target": "next_nearest"}]},
        outbox__retries_per_channel=1,
    )
    sender = FailingSender()
    c = change("smk-1/smoke-fire", severity="danger")
    commit(url, [c])
    desk = AlarmDesk(
        url, cfg, dispatcher=RankedDispatcher(["w1"]), sender=sender, instance="test-redaction"
    )
    async with desk as d:
        d.on_changes([c])
        await until(lambda: len(sender.calls) >= 2, 10, "both channels tried")
        await until(
            lambda: sum(r.name == "cloud.lifecycle.sender" for r in caplog.records) >= 2,
            10, "the sender's two log lines",
        )  # fmt: skip
    mine = [r for r in caplog.records if r.name == "cloud.lifecycle.sender"]
    assert any("+86138****0020" in r.getMessage() for r in mine)
    _assert_clean(caplog.records)
