"""Partition leases with fencing epochs, in PostgreSQL: who owns a partition, and proof of it.

A worker owns a partition while its lease is unexpired. Taking a partition over (free, or its
lease expired) raises the partition's ``epoch``; every write made on the partition's behalf
calls ``fence`` in the same transaction, which fails once the epoch has moved on. So an owner
paused past its lease (SIGSTOP, a long GC, a VM migration) can wake up and try to commit, and
write nothing: the transaction that would have written is the one that finds out.

Times are the database server's clock (``clock_timestamp()``), never a worker's: workers on
different machines disagree about the time, the database is the one judge. PostgreSQL only:
the single-process SQLite mode has nothing to share.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

metadata = sa.MetaData()

partition_leases = sa.Table(
    "partition_leases",
    metadata,
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("owner", sa.String(128), nullable=True),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),  # database clock, epoch seconds
    sa.Column("handovers", sa.BigInteger, nullable=False),  # owner changes, for metrics
)

LOCK_NOT_AVAILABLE_SQLSTATE = "55P03"  # lock_timeout ran out
DB_NOW = sa.literal_column("extract(epoch from clock_timestamp())", sa.Float)


class Fenced(Exception):
    """This worker no longer owns the partition: whatever it was writing must not land."""

    def __init__(self, partition: int, owner: str, epoch: int) -> None:
        super().__init__(
            f"partition {partition}: lease epoch {epoch} of {owner} is no longer valid"
        )
        self.partition, self.owner, self.epoch = partition, owner, epoch


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease held: the proof (``epoch``) to show with every write."""

    partition: int
    owner: str
    epoch: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """A partition's lease as stored (for ``gridalarm cloud partitions`` and balancing)."""

    partition: int
    owner: str | None
    epoch: int
    expires_at: float
    handovers: int
    live: bool


def create_lease_tables(db: Engine, partitions: int) -> None:
    """The lease table with one row per partition (existing rows kept)."""
    metadata.create_all(db)
    with db.begin() as conn:
        stmt = postgresql.insert(partition_leases).on_conflict_do_nothing()
        conn.execute(stmt, [{"partition": p, "owner": None, "epoch": 0, "expires_at": 0.0,
                             "handovers": 0} for p in range(partitions)])  # fmt: skip


def acquire(
    conn: Connection, partition: int, owner: str, ttl_s: float, *, wait_s: float | None = None
) -> Lease | None:
    """Take *partition* if it is free or expired, or renew it if *owner* holds it; None when
    another worker holds it, or (with *wait_s*) when a writer kept its row locked that long.
    A takeover raises the epoch (fencing the previous owner)."""
    p = partition_leases
    mine = p.c.owner == owner
    takeover = sa.case((mine, p.c.epoch), else_=p.c.epoch + 1)
    if wait_s is not None:  # for the rest of this transaction
        conn.execute(sa.text(f"SET LOCAL lock_timeout = {max(1, int(wait_s * 1000))}"))
    try:
        with conn.begin_nested():
            row = conn.execute(
                sa.update(p)
                .where(
                    p.c.partition == partition,
                    sa.or_(mine, p.c.owner.is_(None), p.c.expires_at < DB_NOW),
                )
                .values(
                    owner=owner,
                    epoch=takeover,
                    expires_at=DB_NOW + ttl_s,
                    handovers=sa.case((mine, p.c.handovers), else_=p.c.handovers + 1),
                )
                .returning(p.c.epoch, p.c.expires_at)
            ).first()
    except sa_exc.DBAPIError as err:
        if getattr(err.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE_SQLSTATE:
            raise
        return None
    return None if row is None else Lease(partition, owner, int(row.epoch), float(row.expires_at))


def renew(conn: Connection, lease: Lease, ttl_s: float) -> Lease:
    """Extend a lease still held with the same epoch; Fenced when it was lost."""
    p = partition_leases
    row = conn.execute(
        sa.update(p)
        .where(*_held(lease), p.c.expires_at >= DB_NOW)
        .values(expires_at=DB_NOW + ttl_s)
        .returning(p.c.expires_at)
    ).first()
    if row is None:
        raise Fenced(lease.partition, lease.owner, lease.epoch)
    return Lease(lease.partition, lease.owner, lease.epoch, float(row.expires_at))


def fence(conn: Connection, lease: Lease) -> None:
    """In the transaction of a write made for the partition: Fenced unless the lease is still
    this one and unexpired. The row stays locked until the transaction ends, so a takeover
    waits for this write to commit (and then moves the epoch on) rather than racing it."""
    p = partition_leases
    row = conn.execute(
        sa.select(p.c.partition).where(*_held(lease), p.c.expires_at >= DB_NOW).with_for_update()
    ).first()
    if row is None:
        raise Fenced(lease.partition, lease.owner, lease.epoch)


def release(conn: Connection, lease: Lease) -> bool:
    """Give the partition up at once (shutdown, rebalancing); False if it was already lost."""
    p = partition_leases
    done = conn.execute(
        sa.update(p).where(*_held(lease)).values(owner=None, expires_at=0.0)
    ).rowcount
    return bool(done)


def leases(conn: Connection) -> list[LeaseRow]:
    """Every partition's lease, by partition."""
    p = partition_leases
    rows = conn.execute(
        sa.select(p, (p.c.expires_at >= DB_NOW).label("live")).order_by(p.c.partition)
    ).all()
    return [
        LeaseRow(r.partition, r.owner, int(r.epoch), float(r.expires_at), int(r.handovers),
                 bool(r.live) and r.owner is not None)
        for r in rows
    ]  # fmt: skip


def _held(lease: Lease) -> tuple[sa.ColumnElement[bool], ...]:
    p = partition_leases
    return (p.c.partition == lease.partition, p.c.owner == lease.owner, p.c.epoch == lease.epoch)
