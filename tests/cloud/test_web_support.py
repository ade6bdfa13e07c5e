"""Shared pieces of the web tests: an in-memory ``WorkerDesk`` and a real uvicorn server.

``FakeDesk`` decides transitions with the lifecycle's own pure state table
(``cloud.lifecycle.machine``), so a refused action raises the real ``IllegalTransition``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import uvicorn
from fastapi import FastAPI

from cloud.lifecycle import (
    ActionResult,
    IllegalTransition,
    Outcome,
    State,
    UnknownAlarm,
    machine,
)
from cloud.notify import LinkSigner
from cloud.web import AlarmPage, HistoryEntry, Place, WorkerInfo, create_app

NOW = 1_790_000_000.0  # 2026-09-21, a fixed clock
SECRET = "s" * 32
TWILIO_TOKEN = "twilio-auth-token-" + "x" * 14
W1_PHONE = "+8613800000001"
W2_PHONE = "+447700900002"


class FakeDesk:
    """Two workers (w1 zh-CN, w2 en), alarm 41 notified to w1 and alarm 42 to w2."""

    def __init__(self) -> None:
        self.workers = {
            "w1": WorkerInfo("w1", "王芳", "zh-CN"),
            "w2": WorkerInfo("w2", "Alice", "en"),
        }
        self.phones = {W1_PHONE: "w1", W2_PHONE: "w2"}
        self.notified = {"w1": [41], "w2": [42]}
        self.alarms = {
            41: AlarmPage(
                41, "疑似火警 包饼店", "Suspected fire, bakery", "critical", "smk-0042",
                NOW - 120, State.NOTIFIED,
                place=Place(24.4921, 118.1234, "叶厝社区 湖滨路 12 号", "7号楼", "1", "包饼店",
                            "+8659212345678"),
                history=(HistoryEntry(NOW - 120, "raised", "rules"),
                         HistoryEntry(NOW - 119, "notified", "w1", "sms")),
            ),
            42: AlarmPage(42, "井盖移位", "Manhole cover moved", "warning", None, NOW - 60,
                          State.NOTIFIED),
        }  # fmt: skip
        self.positions: list[tuple[str, float, float, float]] = []
        self.help: list[tuple[int, str, str]] = []

    def state(self, alarm_id: int) -> State:
        return self.alarms[alarm_id].state

    async def worker(self, worker_id: str) -> WorkerInfo | None:
        return self.workers.get(worker_id)

    async def worker_by_phone(self, phone: str) -> WorkerInfo | None:
        return self.workers.get(self.phones.get(phone, ""))

    async def latest_notified(self, worker_id: str) -> int | None:
        open_ = [a for a in self.notified.get(worker_id, []) if self.state(a) != State.RESOLVED]
        return open_[-1] if open_ else None

    async def view(self, alarm_id: int) -> AlarmPage:
        if alarm_id not in self.alarms:
            raise UnknownAlarm(alarm_id)
        return self.alarms[alarm_id]

    async def take(self, alarm_id: int, worker_id: str, channel: str) -> ActionResult:
        a = await self.view(alarm_id)
        d = machine.acknowledge(alarm_id, a.state, worker_id)
        return self._apply(a, d, "acknowledged", worker_id, channel)

    async def arrive(self, alarm_id: int, worker_id: str, channel: str) -> ActionResult:
        a = await self.view(alarm_id)
        return self._apply(a, machine.arrive(alarm_id, a.state), "on_site", worker_id, channel)

    async def resolve(
        self, alarm_id: int, worker_id: str, outcome: Outcome, note: str | None, channel: str
    ) -> ActionResult:
        a = await self.view(alarm_id)
        current = a.outcome.value if a.outcome else None
        d = machine.resolve(alarm_id, a.state, current, outcome)
        if d.changed:
            self.alarms[alarm_id] = a = replace(a, outcome=outcome)
        return self._apply(a, d, "resolved", worker_id, channel, note, outcome.value)

    async def need_help(
        self, alarm_id: int, worker_id: str, note: str | None, channel: str
    ) -> ActionResult:
        a = await self.view(alarm_id)
        self.help.append((alarm_id, worker_id, channel))
        event = HistoryEntry(NOW, "need_help", worker_id, channel, note)
        self.alarms[alarm_id] = replace(a, history=(*a.history, event))
        return ActionResult(alarm_id, a.state, False, "help requested")

    async def verify(self, alarm_id: int, worker_id: str, channel: str) -> ActionResult:
        a = await self.view(alarm_id)
        if a.state is State.RESOLVED:
            raise IllegalTransition(alarm_id, a.state, "confirm", "it is resolved")
        if a.verified:
            return ActionResult(alarm_id, a.state, False, "already confirmed")
        event = HistoryEntry(NOW, "verified", worker_id, channel)
        self.alarms[alarm_id] = replace(a, verified=True, history=(*a.history, event))
        return ActionResult(alarm_id, a.state, True, "confirmed real on site")

    async def record_position(self, worker_id: str, lat: float, lon: float, ts: float) -> bool:
        self.positions.append((worker_id, lat, lon, ts))
        return True

    def _apply(
        self, a: AlarmPage, d: machine.Decision, kind: str, who: str, channel: str,
        note: str | None = None, outcome: str | None = None,
    ) -> ActionResult:  # fmt: skip
        if d.changed:
            event = HistoryEntry(NOW, kind, who, channel, note, outcome)
            self.alarms[a.alarm_id] = replace(a, state=d.to, history=(*a.history, event))
        return ActionResult(a.alarm_id, d.to, d.changed, d.detail)


def signer() -> LinkSigner:
    return LinkSigner(SECRET)


def token(worker: str = "w1", alarm: str = "41", expires_in_s: float = 3600) -> str:
    return signer().make(worker, alarm, datetime.fromtimestamp(NOW + expires_in_s, UTC))


def app_for(desk: FakeDesk, public_base_url: str = "https://alarm.example.cn") -> FastAPI:
    return create_app(
        desk, signer(), twilio_auth_token=TWILIO_TOKEN, public_base_url=public_base_url,
        clock=lambda: NOW,
    )  # fmt: skip


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run *app* under a real uvicorn on 127.0.0.1:<free port>; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="web.uvicorn")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start within 10 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_fake_desk_refuses_what_the_lifecycle_refuses() -> None:
    desk = FakeDesk()
    with pytest.raises(IllegalTransition):
        asyncio.run(desk.arrive(41, "w1", "web"))
    assert desk.state(41) is State.NOTIFIED
