"""Partition leases, fencing and balance on a real PostgreSQL server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.cluster.balance import moves, quota
from cloud.cluster.leases import (
    Fenced,
    Lease,
    LeaseRow,
    acquire,
    create_lease_tables,
    fence,
    leases,
    partition_leases,
    release,
    renew,
)
from cloud.cluster.members import heartbeat, leave, live_workers, next_lapse
from cloud.dbsession import end_sessions, named, session_name
from tests.postgres import find_bin, postgres_server
from tests.support import need_service, wait_until

P = 16
meta = sa.MetaData()
writes = sa.Table("fenced_writes", meta, sa.Column("n", sa.Integer), sa.Column("by", sa.Text))


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if find_bin() is None:
        need_service("PostgreSQL")
    with postgres_server() as url:
        yield url


@pytest.fixture
def db(pg_url: str) -> Iterator[Engine]:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TABLE IF EXISTS partition_leases, cluster_workers, fenced_writes"
        )
    create_lease_tables(engine, P)
    meta.create_all(engine)
    yield engine
    engine.dispose()


def test_a_partition_has_one_owner_until_its_lease_expires(db: Engine) -> None:
    with db.begin() as conn:
        a = acquire(conn, 3, "worker-a", ttl_s=0.5)
        assert a is not None and a.epoch == 1
        assert acquire(conn, 3, "worker-b", ttl_s=0.5) is None  # held and alive
        again = acquire(conn, 3, "worker-a", ttl_s=0.5)  # the owner renews: same epoch
        assert again is not None and again.epoch == 1

    got: list[Lease] = []

    def take() -> bool:
        with db.begin() as conn:
            lease = acquire(conn, 3, "worker-b", ttl_s=30)
        got.extend([lease] if lease else [])
        return lease is not None

    wait_until(take, 5, "worker-b takes the expired partition")
    assert got[0].epoch == 2
    with db.begin() as conn:
        (row,) = [r for r in leases(conn) if r.partition == 3]
    assert (row.owner, row.epoch, row.handovers, row.live) == ("worker-b", 2, 2, True)


def test_a_paused_owner_writes_nothing_once_replaced(db: Engine) -> None:
    with db.begin() as conn:
        old = acquire(conn, 0, "worker-a", ttl_s=0.3)
    assert old is not None
    with db.begin() as conn:  # while it holds the lease, its writes land
        fence(conn, old)
        conn.execute(sa.insert(writes).values(n=1, by="a"))

    def take() -> bool:
        with db.begin() as conn:
            return acquire(conn, 0, "worker-b", ttl_s=30) is not None

    wait_until(take, 5, "the partition taken over")  # worker-a was "paused" meanwhile
    with pytest.raises(Fenced), db.begin() as conn:  # it wakes up and tries to commit
        conn.execute(sa.insert(writes).values(n=2, by="a"))
        fence(conn, old)
    with pytest.raises(Fenced), db.begin() as conn:
        renew(conn, old, ttl_s=30)
    with db.connect() as conn:
        assert conn.execute(sa.select(writes.c.n)).scalars().all() == [1]


def test_a_released_partition_is_free_at_once(db: Engine) -> None:
    with db.begin() as conn:
        lease = acquire(conn, 5, "worker-a", ttl_s=60)
        assert lease is not None and release(conn, lease)
        assert not release(conn, lease)
        taken = acquire(conn, 5, "worker-b", ttl_s=60)
    assert taken is not None and taken.epoch == 2


def test_quotas_cover_every_partition_once() -> None:
    for n in range(1, 8):
        live = [f"w{i}" for i in range(n)]
        assert sum(quota(w, live, 64) for w in live) == 64
        assert max(quota(w, live, 64) for w in live) - min(quota(w, live, 64) for w in live) <= 1
    assert quota("gone", ["w0"], 64) == 0


def _round(db: Engine, workers: list[str], ttl_s: float) -> None:
    """One balancing round of each worker, as its loop would run it."""
    for w in workers:
        with db.begin() as conn:
            heartbeat(conn, w)
            live = live_workers(conn, within_s=ttl_s)
            plan = moves(w, live, leases(conn))
            for p in plan.give:
                owned = [r for r in leases(conn) if r.partition == p]
                release(conn, _lease(owned[0]))
            for p in plan.take:
                acquire(conn, p, w, ttl_s)


def _lease(row: LeaseRow) -> Lease:
    assert row.owner is not None
    return Lease(row.partition, row.owner, row.epoch, row.expires_at)


def _owners(db: Engine) -> dict[str | None, int]:
    with db.connect() as conn:
        counts: dict[str | None, int] = {}
        for r in leases(conn):
            key = r.owner if r.live else None
            counts[key] = counts.get(key, 0) + 1
        return counts


def test_partitions_spread_evenly_and_move_when_a_worker_leaves(db: Engine) -> None:
    workers = ["w-a", "w-b", "w-c"]
    for _ in range(3):
        _round(db, workers, ttl_s=30)
    assert _owners(db) == {"w-a": 6, "w-b": 5, "w-c": 5}
    with db.begin() as conn:
        leave(conn, "w-c")  # a clean stop; its leases are then released...
        for r in leases(conn):
            if r.owner == "w-c":
                release(conn, _lease(r))
    for _ in range(2):
        _round(db, ["w-a", "w-b"], ttl_s=30)
    assert _owners(db) == {"w-a": 8, "w-b": 8}


def test_a_worker_knows_when_the_others_lapse(db: Engine) -> None:
    with db.begin() as conn:
        heartbeat(conn, "worker-a")
        acquire(conn, 1, "worker-a", ttl_s=60)
        assert next_lapse(conn, "worker-a", within_s=60) is None  # nobody else
        heartbeat(conn, "worker-b")
        acquire(conn, 2, "worker-b", ttl_s=4)  # its lease runs out before its heartbeat does
        left = next_lapse(conn, "worker-a", within_s=60)
        assert left is not None and 3.0 < left <= 4.0
        assert (next_lapse(conn, "worker-b", within_s=60) or 0) > 55  # worker-a's heartbeat
        acquire(conn, 2, "worker-b", ttl_s=120)  # renewed past its heartbeat's 60 s
        left = next_lapse(conn, "worker-a", within_s=60)
        assert left is not None and 55 < left <= 60


def test_a_lapsed_workers_sessions_are_ended_and_its_locks_go_with_them(
    db: Engine, pg_url: str
) -> None:
    stopped = sa.create_engine(named(pg_url, "worker-z"))
    try:
        with db.begin() as conn:
            lease = acquire(conn, 7, "worker-z", ttl_s=60)
        assert lease is not None
        zombie = stopped.connect()
        trans = zombie.begin()
        fence(zombie, lease)  # the lease row locked, as in a checkpoint commit, and then stopped
        with db.connect() as conn:
            name = conn.execute(
                sa.text("SELECT application_name FROM pg_stat_activity WHERE application_name"
                        " LIKE 'gridalarm/%'")
            ).scalars().all()  # fmt: skip
        assert name == [session_name("worker-z")]
        with db.begin() as conn:  # the lock holds: another writer would wait
            conn.execute(sa.text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(sa.exc.OperationalError):
                conn.execute(sa.update(partition_leases).values(expires_at=0.0))
        with db.begin() as conn:
            assert end_sessions(conn, "worker-z") == 1
            assert end_sessions(conn, "worker-z") == 0
        with db.begin() as conn:  # the lock went with the session
            conn.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            conn.execute(sa.update(partition_leases).values(expires_at=0.0))
        with pytest.raises(sa.exc.DBAPIError):  # the stopped worker finds out on waking
            fence(zombie, lease)
        trans.rollback()
        zombie.close()
    finally:
        stopped.dispose()


def test_session_names_are_what_the_server_keeps() -> None:
    assert session_name("host-1_w.2:a") == "gridalarm/host-1_w.2:a"
    assert session_name("网格 w1") == "gridalarm/___w1"
    assert len(session_name("x" * 100)) == 63
    assert "application_name=gridalarm%2Fw1" in named("postgresql+psycopg://u:p@h:5/db", "w1")
    assert named("postgresql+psycopg://u:p@h:5/db", "w1").startswith("postgresql+psycopg://u:p@")


def test_a_takeover_does_not_wait_long_on_a_locked_lease_row(db: Engine) -> None:
    with db.begin() as conn:
        old = acquire(conn, 9, "worker-a", ttl_s=0.2)
    assert old is not None
    wait_until(lambda: not _live(db, 9), 5, "the lease to expire")
    with db.connect() as holder, holder.begin():
        holder.execute(sa.select(partition_leases).where(partition_leases.c.partition == 9)
                       .with_for_update())  # fmt: skip
        started = time.monotonic()
        with db.begin() as conn:
            assert acquire(conn, 9, "worker-b", ttl_s=30, wait_s=0.3) is None
            waited = time.monotonic() - started
            assert acquire(conn, 10, "worker-b", ttl_s=30) is not None  # the transaction goes on
    assert 0.25 <= waited < 5.0
    with db.begin() as conn:  # the writer gone, the next round takes it
        taken = acquire(conn, 9, "worker-b", ttl_s=30, wait_s=0.3)
    assert taken is not None and taken.epoch == old.epoch + 1


def _live(db: Engine, partition: int) -> bool:
    with db.connect() as conn:
        return next(r.live for r in leases(conn) if r.partition == partition)
