"""Settings every cloud connection to PostgreSQL gets, whoever opens it.

``idle_in_transaction_session_timeout``: a worker stopped in the middle of a transaction
(SIGSTOP, a frozen VM) keeps the row locks it took — a partition lease fenced by a
checkpoint, an alarm row a step locked — and the worker taking over would wait for them as
long as the pause lasts. The server ends such a session after this long, its locks go with
it, and the stopped worker finds out on waking (a transient fault: it retries, and its
fence then says the partition is no longer its own). Worst case a handover takes the lease
plus this. The deployment's postgresql.conf says the same (deploy/postgresql/).
"""

from __future__ import annotations

from typing import Any

IDLE_IN_TRANSACTION_MS = 5000
IDLE_IN_TRANSACTION_SQLSTATE = "25P03"  # the error a session ended that way reports


def engine_options(url: str) -> dict[str, Any]:
    """Keyword arguments for ``sqlalchemy.create_engine(url, ...)``."""
    if not url.startswith("postgresql"):
        return {}
    options = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
    return {"connect_args": {"options": options}}
