"""Fixtures of the lifecycle, escalation and outbox tests: a database URL, a clock, a Lifecycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.lifecycle import Lifecycle, PlainRenderer
from cloud.lifecycle.steps import StepContext
from cloud.lifecycle.tables import open_lifecycle_db
from tests.cloud.test_lifecycle_fixtures import Clock, RankedDispatcher, config


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cloud.db'}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def life(url: str, clock: Clock) -> Lifecycle:
    ctx = StepContext(config(), RankedDispatcher(["w1", "w2", "w3"]), PlainRenderer())
    return Lifecycle(open_lifecycle_db(url), ctx, clock)
