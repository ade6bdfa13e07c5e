"""Which partition a gateway belongs to, and what a partition subscribes to.

The hash is fixed (CRC-32 of the gateway id, modulo the partition count), so every worker,
every release and the ``gridalarm cloud partitions`` listing agree without asking anyone.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from wire.topics import TOPIC_PREFIX


def partition_of(gateway: str, partitions: int) -> int:
    """The partition of *gateway* among *partitions*."""
    return zlib.crc32(gateway.encode("utf-8")) % partitions


def client_id(partition: int) -> str:
    """The partition's MQTT client id: its persistent session outlives any one worker."""
    return f"gridalarm-cloud-p{partition}"


def gateway_topics(gateways: Iterable[str]) -> list[str]:
    """One subscription per gateway: status, data, events and drop records alike."""
    return [f"{TOPIC_PREFIX}/{gw}/#" for gw in sorted(set(gateways))]


def checkpoint_name(name: str, partition: int | None) -> str:
    """A checkpoint row's name: ``dedup`` for the single worker, ``dedup.p7`` per partition."""
    return name if partition is None else f"{name}.p{partition}"
