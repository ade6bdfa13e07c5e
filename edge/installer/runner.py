"""`run`: the gateway in the foreground until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from edge.gateway import run_gateway

logger = logging.getLogger(__name__)


async def run_until_signalled(main: Coroutine[Any, Any, None]) -> bool:
    """Run *main* as a task; SIGTERM / SIGINT cancel it. True if a signal stopped it.

    Cancelling unwinds the gateway's context managers (outbox committed, offline status
    published), so a signal is a clean stop, not an error.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(main, name="edge.main")
    stopped_by: list[str] = []

    def stop(sig: signal.Signals) -> None:
        if not stopped_by:
            logger.info("received %s; stopping", sig.name)
        stopped_by.append(sig.name)
        task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)
    try:
        await task
    except asyncio.CancelledError:
        if not stopped_by:
            raise
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return bool(stopped_by)


def run_gateway_foreground(config_path: Path) -> None:
    """Run the gateway of *config_path* until a signal stops it."""
    asyncio.run(run_until_signalled(run_gateway(config_path)))
