"""The demo's "phones" page: what every worker's phone received, so the loop shows without SMS.

``PhoneChannel`` wraps a channel of the running cloud and hands each message it sent to the
``PhoneBook``; ``router`` serves the book read-only at ``/phones``, per worker, newest first,
each message with its link to the worker's page. The simulated crew listens to the same book.
Only the demo mounts it: the messages carry signed links, which are credentials.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from cloud.notify import Channel, Message, Receipt

PATH = "/phones"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as a worker's phone got it."""

    at: float
    worker_id: str
    name: str
    phone: str
    channel: str
    text: str
    link: str
    alarm_ids: tuple[int, ...]


@dataclass
class PhoneBook:
    """The messages of this run per worker (the newest *keep* each), and who listens."""

    keep: int = 50
    clock: Callable[[], float] = time.time
    _phones: dict[str, deque[Delivery]] = field(default_factory=dict)
    _listeners: list[asyncio.Queue[Delivery]] = field(default_factory=list)

    def add(self, msg: Message) -> Delivery:
        """Keep *msg* for its recipient and pass it to every listener."""
        who = msg.recipient
        ids = tuple(int(a) for a in msg.data.get("alarm_ids", ()))
        delivery = Delivery(
            self.clock(), who.worker_id, who.name, who.phone or "", str(msg.channel),
            msg.text, msg.link, ids,
        )  # fmt: skip
        self._phones.setdefault(who.worker_id, deque(maxlen=self.keep)).appendleft(delivery)
        for queue in self._listeners:
            queue.put_nowait(delivery)
        return delivery

    def listen(self) -> asyncio.Queue[Delivery]:
        """A queue that gets every message from now on."""
        queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._listeners.append(queue)
        return queue

    def phones(self) -> list[list[Delivery]]:
        """Per worker, newest message first; the worker who got a message last comes first."""
        return sorted((list(d) for d in self._phones.values()), key=lambda d: -d[0].at)

    def __len__(self) -> int:
        return sum(len(d) for d in self._phones.values())


class PhoneChannel:
    """Sends through *inner*, then notes what was sent in the phone book."""

    def __init__(self, inner: Channel, book: PhoneBook) -> None:
        self._inner, self._book = inner, book

    async def send(self, msg: Message) -> Receipt:
        receipt = await self._inner.send(msg)
        self._book.add(msg)
        return receipt


def tap_channels(channels: dict[str, Channel], book: PhoneBook) -> None:
    """Wrap every channel of a running cloud so each message sent also lands in *book*."""
    for name, channel in list(channels.items()):
        if not isinstance(channel, PhoneChannel):
            channels[name] = PhoneChannel(channel, book)


def router(book: PhoneBook) -> APIRouter:
    """``GET /phones``: the book as a read-only page (reload to refresh)."""
    env = Environment(
        loader=PackageLoader("gridalarm", "templates"), autoescape=select_autoescape(default=True)
    )
    env.filters["clock"] = lambda t: time.strftime("%H:%M:%S", time.localtime(t))
    template = env.get_template("phones.html")
    r = APIRouter()

    @r.get(PATH, response_class=HTMLResponse, name="demo_phones")
    async def phones() -> HTMLResponse:
        html = template.render(phones=book.phones(), total=len(book))
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    return r
