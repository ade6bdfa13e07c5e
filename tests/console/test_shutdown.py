"""A cloud with consoles still listening stops promptly: an open live stream never holds up
the web server's shutdown for its whole lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import pytest

from cloud.console.live import STREAM_MAX_S
from cloud.console.users import Role, add_user
from gridalarm.brokers import Mosquitto
from rigs.standins.twilio_api import TwilioStandin
from tests.console.conftest import PASSWORD, sign_in
from tests.integration.test_dispatch import loop_rig

pytestmark = pytest.mark.integration


async def test_stopping_the_cloud_ends_open_live_streams(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = asyncio.Event()

    async def listen(http: httpx.AsyncClient) -> None:
        async with http.stream("GET", "/console/events?v=-1") as response:
            async for _line in response.aiter_lines():
                opened.set()

    with TwilioStandin() as twilio:
        rig = loop_rig(broker, tmp_path, monkeypatch, twilio)
        _sims, cloud, base = await rig.__aenter__()
        add_user(cloud.db, "disp", PASSWORD, Role.DISPATCHER)
        http = httpx.AsyncClient(base_url=base, timeout=None)
        await sign_in(http, "disp")
        stream = asyncio.create_task(listen(http), name="test.sse")
        async with asyncio.timeout(10):
            await opened.wait()
        t0 = time.monotonic()
        await rig.__aexit__(None, None, None)
        stopped_after = time.monotonic() - t0
        stream.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await stream
        await http.aclose()
    assert stopped_after < STREAM_MAX_S / 3, stopped_after
