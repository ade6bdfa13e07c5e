"""Which cloud workers are alive: each one's heartbeat row, judged by the database's clock."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from cloud.cluster.leases import DB_NOW, metadata

cluster_workers = sa.Table(
    "cluster_workers",
    metadata,
    sa.Column("worker", sa.String(128), primary_key=True),
    sa.Column("seen_at", sa.Float, nullable=False),  # database clock, epoch seconds
    sa.Column("started_at", sa.Float, nullable=False),
)


def heartbeat(conn: Connection, worker: str) -> None:
    """This worker is alive now."""
    stmt = postgresql.insert(cluster_workers).values(
        worker=worker, seen_at=DB_NOW, started_at=DB_NOW
    )
    conn.execute(stmt.on_conflict_do_update(index_elements=["worker"], set_={"seen_at": DB_NOW}))


def live_workers(conn: Connection, within_s: float) -> list[str]:
    """Workers seen in the last *within_s* seconds, sorted (every worker computes the same list)."""
    w = cluster_workers
    q = sa.select(w.c.worker).where(w.c.seen_at >= DB_NOW - within_s).order_by(w.c.worker)
    return list(conn.execute(q).scalars())


def leave(conn: Connection, worker: str) -> None:
    """A clean shutdown: the others rebalance at once instead of waiting for silence."""
    conn.execute(sa.delete(cluster_workers).where(cluster_workers.c.worker == worker))
