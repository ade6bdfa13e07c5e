"""Small asyncio building blocks shared by the gateway's tasks."""

from __future__ import annotations

import asyncio


async def wait_first(*events: asyncio.Event, timeout_s: float | None = None) -> bool:
    """Wait until any of *events* is set; return False if *timeout_s* passed first."""
    waits = {asyncio.ensure_future(e.wait()) for e in events}
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    return bool(done)
