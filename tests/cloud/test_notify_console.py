"""The console channel used by the demo."""

from __future__ import annotations

import logging

import pytest

from cloud.notify import Channel, ChannelKind, ConsoleChannel, Message, Recipient


async def test_emits_both_languages() -> None:
    lines: list[str] = []
    channel: Channel = ConsoleChannel(lines.append)
    who = Recipient(worker_id="w17", name="林秀英", phone="+8613800000001")
    msg = Message(
        id="4821:1:w17:console",
        alarm_id="4821",
        recipient=who,
        channel=ChannelKind.CONSOLE,
        text="【街道大脑】疑似火警 包饼店 回复1接单 2误报 https://g.cn/m/A",
        link="https://g.cn/m/A",
        data={
            "alt_text": "[Street Brain] Suspected fire Bakery Reply 1=take 2=false https://g.cn/m/A"
        },
    )
    receipt = await channel.send(msg)
    assert lines == [
        f"→ 林秀英 (+8613800000001) [4821:1:w17:console]: {msg.text}",
        f"→ 林秀英 (+8613800000001) [4821:1:w17:console]: {msg.data['alt_text']}",
    ]
    assert receipt.channel is ChannelKind.CONSOLE
    assert receipt.provider_id == msg.id


async def test_the_default_log_line_masks_the_number_and_drops_the_link(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    who = Recipient(worker_id="w17", name="林秀英\nINFO forged", phone="+8613800000020")
    link = "https://g.cn/m/AbCdEfGhIjKlMnOpQrSt"
    msg = Message(
        id="4821:1:w17:console", alarm_id="4821", recipient=who, channel=ChannelKind.CONSOLE,
        text=f"【街道大脑】疑似火警 包饼店 回复1接单 2误报 {link}", link=link,
        data={"alt_text": f"[Street Brain] Suspected fire Reply 1=take {link}"},
    )  # fmt: skip
    await ConsoleChannel().send(msg)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert all("+86138****0020" in line and "疑似火警" in lines[0] for line in lines)
    for line in lines:
        assert "13800000020" not in line and "AbCdEfGhIjKlMnOpQrSt" not in line
        assert "g.cn" not in line and "\n" not in line
