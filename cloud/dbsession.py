"""Settings every cloud connection to PostgreSQL gets, whoever opens it.

``idle_in_transaction_session_timeout``: a worker stopped in the middle of a transaction
(SIGSTOP, a frozen VM) keeps the row locks it took — a partition lease fenced by a
checkpoint, an alarm row a step locked — and the worker taking over would wait for them as
long as the pause lasts. The server ends such a session after this long, its locks go with
it, and the stopped worker finds out on waking (a transient fault: it retries, and its
fence then says the partition is no longer its own). Worst case a handover takes the lease
plus this. The deployment's postgresql.conf says the same (deploy/postgresql/).

That timeout only sees a session waiting for its next command. A worker stopped while its
session is mid-batch (psycopg pipelines ``executemany``) or while the server writes it a
result is "active" to the server, and its locks stay. So in the scaled mode every worker's
sessions carry its name (``application_name``), and the workers that take over from one
whose heartbeat and leases lapsed end its sessions (``end_sessions``): the stopped worker
loses its connections, and on waking retries, is fenced and rejoins.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

logger = logging.getLogger(__name__)

IDLE_IN_TRANSACTION_MS = 5000
IDLE_IN_TRANSACTION_SQLSTATE = "25P03"  # the error a session ended that way reports
NO_PRIVILEGE_SQLSTATE = "42501"  # not allowed to end another role's sessions
SESSION_PREFIX = "gridalarm/"


def engine_options(url: str) -> dict[str, Any]:
    """Keyword arguments for ``sqlalchemy.create_engine(url, ...)``."""
    if not url.startswith("postgresql"):
        return {}
    options = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
    return {"connect_args": {"options": options}}


def session_name(worker: str) -> str:
    """The ``application_name`` of *worker*'s sessions (printable ASCII, at most 63 bytes, as
    the server keeps it: both sides must compute the same string)."""
    return (SESSION_PREFIX + re.sub(r"[^A-Za-z0-9._:-]", "_", worker))[:63]


def named(url: str, worker: str) -> str:
    """*url* (PostgreSQL) with *worker*'s sessions named after it."""
    u = sa.make_url(url).update_query_dict({"application_name": session_name(worker)})
    return u.render_as_string(hide_password=False)


def end_sessions(conn: Connection, worker: str) -> int:
    """End every session of *worker* (one the cluster has given up on), its open transactions
    rolled back and their locks released; how many. 0 when this role may not end them (it
    must be the same role, or a member of pg_signal_backend): logged, and the takeover then
    waits for the stopped worker's locks."""
    query = sa.text(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = :name AND pid <> pg_backend_pid()"
    )
    try:
        with conn.begin_nested():
            return int(conn.execute(query, {"name": session_name(worker)}).scalar_one())
    except sa_exc.DBAPIError as err:
        if getattr(err.orig, "sqlstate", None) != NO_PRIVILEGE_SQLSTATE:
            raise
        logger.warning("cannot end the sessions of worker %s: %s", worker, err.orig)
        return 0
