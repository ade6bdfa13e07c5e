"""The phones page shows what each worker's phone got, newest first, with its link."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from cloud.notify import ChannelKind, ConsoleChannel, Message, Recipient
from gridalarm.phones import PhoneBook, tap_channels
from gridalarm.phones import router as phones_router


def message(n: int, worker: str, text: str) -> Message:
    return Message(
        id=f"a{n}-s0-{worker}-console",
        alarm_id=str(n),
        recipient=Recipient(worker, f"name <{worker}>", "+8613800000001"),
        channel=ChannelKind.CONSOLE,
        text=text,
        link=f"http://127.0.0.1:8080/m/token-{n}",
        data={"alarm_ids": [n]},
    )


async def test_each_message_a_channel_sends_lands_on_the_page_newest_first() -> None:
    lines: list[str] = []
    clock = iter(range(100, 200))
    book = PhoneBook(clock=lambda: float(next(clock)))
    channels = {"console": ConsoleChannel(lines.append)}
    tap_channels(channels, book)
    tap_channels(channels, book)  # twice: still one entry per message
    inbox = book.listen()
    await channels["console"].send(message(1, "w-1", "first <b>fire</b>"))
    await channels["console"].send(message(2, "w-2", "flood"))
    await channels["console"].send(message(3, "w-1", "second"))
    assert len(lines) == 3, "the wrapped channel still sends"
    assert [inbox.get_nowait().alarm_ids for _ in range(3)] == [(1,), (2,), (3,)]
    assert [[d.text for d in phone] for phone in book.phones()] == [
        ["second", "first <b>fire</b>"],
        ["flood"],
    ]
    app = FastAPI()
    app.include_router(phones_router(book))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        page = await client.get("/phones")
    assert page.status_code == 200
    html = page.text
    assert "first &lt;b&gt;fire&lt;/b&gt;" in html, "escaped"
    assert html.index("second") < html.index("first &lt;b&gt;") < html.index("flood")
    assert 'href="http://127.0.0.1:8080/m/token-3"' in html
    assert page.headers["cache-control"] == "no-store"
