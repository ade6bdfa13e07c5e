"""What every console route shares: the database, the desk, the gate, the live feed, the
templates, the clock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request
from fastapi.responses import Response
from jinja2 import Environment
from sqlalchemy.engine import Engine

from cloud.console.auth import Gate
from cloud.console.config import ConsoleConfig
from cloud.console.live import BoardFeed
from cloud.console.render import page
from cloud.lifecycle import AlarmDesk


class RecentReadings(Protocol):
    """A readings sink that can read a device's recent readings back (blocking)."""

    def recent(
        self,
        device: str,
        since: float,
        until: float | None = None,
        fields: Sequence[str] | None = None,
    ) -> list[tuple[float, dict[str, Any]]]: ...


@dataclass
class Site:
    """The console's shared parts."""

    db: Engine
    desk: AlarmDesk
    gate: Gate
    env: Environment
    config: ConsoleConfig
    clock: Callable[[], float]
    prefix: str
    feed: BoardFeed
    readings: RecentReadings | None

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("prefix", self.prefix)
        context.setdefault("now", self.clock())
        return page(self.env, request, name, status, tile_url=self.config.tile_url, **context)
