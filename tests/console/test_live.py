"""The live board: one render per change however many consoles listen; each stream wakes on a
kick and carries the new rows."""

from __future__ import annotations

import asyncio

from sse_starlette import ServerSentEvent

from cloud.console.live import BoardFeed


async def test_twenty_streams_share_one_render_per_change() -> None:
    version = {"n": 0}

    def render(locale: str) -> str:
        return f"<tr>{locale} {version['n']}</tr>"

    feed = BoardFeed(render)
    streams = [feed.stream("zh-CN", 0) for _ in range(20)]
    for s in streams:
        hello = await anext(s)
        assert isinstance(hello, ServerSentEvent) and hello.comment == "hello"
    waiting = [asyncio.ensure_future(anext(s)) for s in streams]
    version["n"] = 1
    feed.kick()
    events = await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert set(events) == {b"id: 1\r\nevent: board\r\ndata: <tr>zh-CN 1</tr>\r\n\r\n"}
    assert feed.renders == 1
    for s in streams:
        await s.aclose()


async def test_a_console_that_reconnects_behind_gets_the_board_at_once() -> None:
    feed = BoardFeed(lambda locale: "<tr></tr>")
    feed.kick()
    feed.kick()
    stream = feed.stream("en", 0)
    await anext(stream)
    event = await asyncio.wait_for(anext(stream), 5)
    assert isinstance(event, bytes) and event.startswith(b"id: 2\r\nevent: board\r\n")
    await stream.aclose()
