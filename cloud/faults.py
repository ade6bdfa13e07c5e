"""Transient faults: what is retried with back-off, and what ends the worker.

A database that is locked, restarting or briefly unreachable, or a full disk, passes; the
work waits and is done late, never skipped. Anything else (a bug, a schema that does not
match) is not made better by waiting: it ends the worker with a non-zero exit, so systemd
restarts it and nothing is acknowledged that was not handled.
"""

from __future__ import annotations

import asyncio
import errno
import random
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import exc as sa_exc

from cloud.dbsession import IDLE_IN_TRANSACTION_SQLSTATE
from cloud.health import Health

T = TypeVar("T")

DATABASE = "database"  # the health part every wait on the database reports to: one fault, one line
FIRST_DELAY_S = 0.2
MAX_DELAY_S = 5.0
TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EAGAIN, errno.ECONNREFUSED, errno.ECONNRESET})


def is_transient(err: BaseException) -> bool:
    """A fault that passes by itself (locked, busy, unreachable, disk full)."""
    if isinstance(err, sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    if isinstance(err, sa_exc.DBAPIError) and err.connection_invalidated:
        return True
    if getattr(getattr(err, "orig", None), "sqlstate", None) == IDLE_IN_TRANSACTION_SQLSTATE:
        return True  # the server ended a session that stalled mid-transaction: do it again
    return isinstance(err, OSError) and err.errno in TRANSIENT_ERRNOS


def describe(err: BaseException) -> str:
    """One line: the error's type and first line, without SQL or parameters."""
    text = str(getattr(err, "orig", None) or err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


async def until_done(op: Callable[[], T], *, part: str, health: Health | None, what: str) -> T:
    """Run blocking *op* in a thread until it succeeds; transient faults wait and retry.

    While it fails *part* is not ready (one log line when that starts, one when it ends).
    """
    delay = FIRST_DELAY_S
    failing = False
    while True:
        try:
            result = await asyncio.to_thread(op)
        except Exception as err:
            if not is_transient(err):
                raise
            failing = True
            if health is not None:
                health.mark(part, False, f"{what}: {describe(err)}")
            await asyncio.sleep(delay * random.uniform(0.75, 1.25))
            delay = min(delay * 2, MAX_DELAY_S)
            continue
        if failing and health is not None:
            health.mark(part, True)
        return result
