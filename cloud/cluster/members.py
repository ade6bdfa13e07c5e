"""Which cloud workers are alive: each one's heartbeat row, judged by the database's clock."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from cloud.cluster.leases import DB_NOW, metadata, partition_leases

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


def next_lapse(conn: Connection, worker: str, within_s: float) -> float | None:
    """Seconds until another worker's heartbeat goes stale or one of its leases expires,
    whichever is first (None: nobody else is alive). A dead worker's partitions are free
    from that moment: waking then, not at the next round, takes them up to a round sooner."""
    w, p = cluster_workers, partition_leases
    stale = (
        sa.select(sa.func.min(w.c.seen_at))
        .where(w.c.worker != worker, w.c.seen_at >= DB_NOW - within_s)
        .scalar_subquery()
    )
    lapse = (
        sa.select(sa.func.min(p.c.expires_at))
        .where(p.c.owner.is_not(None), p.c.owner != worker, p.c.expires_at >= DB_NOW)
        .scalar_subquery()
    )
    left = conn.execute(sa.select(sa.func.least(stale + within_s, lapse) - DB_NOW)).scalar()
    return None if left is None else max(0.0, float(left))


def leave(conn: Connection, worker: str) -> None:
    """A clean shutdown: the others rebalance at once instead of waiting for silence."""
    conn.execute(sa.delete(cluster_workers).where(cluster_workers.c.worker == worker))
