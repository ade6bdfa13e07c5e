"""Reading lifecycle rows as ``AlarmView``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cloud.lifecycle.model import AlarmView, State
from cloud.lifecycle.tables import lifecycle_alarms

CHUNK = 500  # ids per IN (...) list: SQLite's bound-parameter limit is far above


def to_view(r: Any) -> AlarmView:
    return AlarmView(
        r.alarm_id, r.key, r.rule_id, r.device, r.gateway, r.severity, r.title_en, r.title_zh,
        r.clears, State(r.state), r.raised_at,
    )  # fmt: skip


def views(conn: Connection, ids: Sequence[int]) -> dict[int, AlarmView]:
    out: dict[int, AlarmView] = {}
    unique = sorted(set(ids))
    for i in range(0, len(unique), CHUNK):
        chunk = unique[i : i + CHUNK]
        rows = conn.execute(
            sa.select(lifecycle_alarms).where(lifecycle_alarms.c.alarm_id.in_(chunk))
        ).all()
        out.update((r.alarm_id, to_view(r)) for r in rows)
    return out
