"""How many partitions each live worker should hold, and what one worker does about it. Pure.

Every worker computes the same quotas from the same sorted list of live workers: P // N each,
the first P % N one more. A worker under its quota takes free (or expired) partitions; one
over it gives up its highest-numbered ones. Nobody takes a partition another worker holds
alive — handing over is always give-then-take, so two workers never fight over one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cloud.cluster.leases import LeaseRow


@dataclass(frozen=True, slots=True)
class Moves:
    """What one worker should do this round."""

    take: tuple[int, ...]  # free or expired partitions to acquire
    give: tuple[int, ...]  # held partitions to release


def quota(worker: str, live: Sequence[str], partitions: int) -> int:
    """The number of partitions *worker* should hold (0 when it is not among *live*)."""
    if worker not in live:
        return 0
    rank = sorted(live).index(worker)
    base, extra = divmod(partitions, len(live))
    return base + (1 if rank < extra else 0)


def moves(worker: str, live: Sequence[str], rows: Sequence[LeaseRow]) -> Moves:
    """This round's moves for *worker* given every partition's lease."""
    want = quota(worker, live, len(rows))
    mine = sorted(r.partition for r in rows if r.owner == worker and r.live)
    if len(mine) > want:
        return Moves(take=(), give=tuple(mine[want:]))
    free = [r.partition for r in rows if not r.live]
    # spread takers over the free list, so N workers starting together rarely collide
    rank = sorted(live).index(worker) if worker in live else 0
    ordered = free[rank :: max(len(live), 1)] + [
        p for p in free if p not in free[rank :: max(len(live), 1)]
    ]
    return Moves(take=tuple(ordered[: want - len(mine)]), give=())
