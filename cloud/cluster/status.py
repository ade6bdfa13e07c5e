"""What ``gridalarm cloud partitions`` shows: who owns each partition, and how far behind it is.

Read from the database alone (any machine with the URL can ask): the lease table, the live
workers, the registry's gateways hashed into partitions, and each partition's checkpoint
rows — the time of its last checkpoint, what it processed, and the newest reading time it
has seen, so "lag" is how old the partition's knowledge is.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.cluster.leases import DB_NOW, leases
from cloud.cluster.members import cluster_workers
from cloud.cluster.partition import checkpoint_name, partition_of
from cloud.ingest.checkpoint import checkpoints
from cloud.ingest.devices import devices


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    """One partition as ``gridalarm cloud partitions`` lists it."""

    partition: int
    owner: str | None  # None: free, or its lease expired
    epoch: int
    expires_in_s: float | None  # until its lease runs out (None: free)
    handovers: int
    gateways: int
    devices: int
    processed: int  # data + event messages processed, all owners together
    checkpoint_age_s: float | None  # since its last checkpoint (None: never)

    def as_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    workers: list[tuple[str, float]]  # live workers and seconds since their heartbeat
    partitions: list[PartitionStatus]


def cluster_status(db: Engine, lease_s: float) -> ClusterStatus:
    """Every partition of the deployment, and the workers seen within *lease_s*."""
    with db.connect() as conn:
        now = float(conn.execute(sa.select(DB_NOW)).scalar_one())
        rows = leases(conn)
        seen = conn.execute(
            sa.select(cluster_workers.c.worker, cluster_workers.c.seen_at).order_by(
                cluster_workers.c.worker
            )
        ).all()
        by_device = conn.execute(sa.select(devices.c.device, devices.c.gateway)).all()
        names = {checkpoint_name("counts", r.partition): r.partition for r in rows}
        counted = conn.execute(
            sa.select(checkpoints.c.name, checkpoints.c.value, checkpoints.c.updated_at).where(
                checkpoints.c.name.in_(list(names))
            )
        ).all()
    n = len(rows)
    gws: dict[int, set[str]] = {}
    devs: dict[int, int] = {}
    for device_row in by_device:
        p = partition_of(device_row.gateway, n) if n else 0
        gws.setdefault(p, set()).add(device_row.gateway)
        devs[p] = devs.get(p, 0) + 1
    progress = {names[c.name]: (_processed(c.value), now - float(c.updated_at)) for c in counted}
    partitions = [
        PartitionStatus(
            r.partition, r.owner if r.live else None, r.epoch,
            round(r.expires_at - now, 1) if r.live else None, r.handovers,
            len(gws.get(r.partition, ())), devs.get(r.partition, 0),
            progress.get(r.partition, (0, None))[0],
            _round(progress.get(r.partition, (0, None))[1]),
        )
        for r in rows
    ]  # fmt: skip
    live = [(w.worker, round(now - w.seen_at, 1)) for w in seen if now - w.seen_at <= lease_s]
    return ClusterStatus(live, partitions)


def _processed(value: str) -> int:
    counts = json.loads(value)
    return int(counts.get("data", 0)) + int(counts.get("event", 0))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
