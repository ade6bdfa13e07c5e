"""Shared fixtures: a real Mosquitto per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gridalarm.brokers import Mosquitto, find_mosquitto
from tests.support import need_service


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real Mosquitto on a free loopback port, with persistence in tmp_path."""
    binary = find_mosquitto()
    if binary is None:
        need_service("mosquitto")
    assert binary is not None
    m = Mosquitto(binary, tmp_path / "mosquitto")
    m.start()
    try:
        yield m
    finally:
        m.stop()
