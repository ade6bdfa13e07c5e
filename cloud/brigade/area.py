"""What a brigade may see: the fire-class alarms of the communities and grids it covers.

Every read and every write of the brigade API asks here first. An alarm outside the area is
answered exactly like one that does not exist, so a brigade cannot even learn that it does.
"""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cloud.brigade.directory import Brigade
from cloud.ingest.devices import devices
from cloud.lifecycle.model import State
from cloud.lifecycle.tables import lifecycle_alarms
from rules.meaning import Category

RECENT_S = 86_400.0  # "recent": alarms resolved in the last day, unless asked otherwise
LIST_MAX = 200


class Which(enum.StrEnum):
    """Which alarms a list holds."""

    OPEN = "open"  # not resolved yet
    ALL = "all"  # open, and those resolved recently (or since the given time)


def _in_area(brigade: Brigade) -> sa.ColumnElement[bool]:
    la, d = lifecycle_alarms, devices
    covered = sa.or_(
        d.c.community.in_(list(brigade.communities)), d.c.grid.in_(list(brigade.grids))
    )
    return sa.and_(
        la.c.category == Category.FIRE.value,
        sa.exists().where(d.c.device == la.c.device, covered),
    )


def visible(conn: Connection, brigade: Brigade, alarm_id: int) -> bool:
    """True when *alarm_id* is a fire-class alarm of *brigade*'s area."""
    la = lifecycle_alarms
    q = sa.select(la.c.alarm_id).where(la.c.alarm_id == alarm_id, _in_area(brigade))
    return conn.execute(q).first() is not None


def alarm_ids(
    conn: Connection, brigade: Brigade, which: Which, since: float | None, now: float
) -> list[int]:
    """The brigade's alarms, newest first (at most ``LIST_MAX``)."""
    la = lifecycle_alarms
    q = sa.select(la.c.alarm_id).where(_in_area(brigade))
    if which is Which.OPEN:
        q = q.where(la.c.state != State.RESOLVED.value)
    else:
        start = since if since is not None else now - RECENT_S
        q = q.where(sa.or_(la.c.state != State.RESOLVED.value, la.c.resolved_at >= start))
    if since is not None:
        q = q.where(la.c.raised_at >= since)
    q = q.order_by(la.c.raised_at.desc(), la.c.alarm_id.desc()).limit(LIST_MAX)
    return [int(i) for i in conn.execute(q).scalars()]
