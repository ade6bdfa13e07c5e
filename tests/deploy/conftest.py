"""Fixtures for the broker tests: brokers and clients that are always stopped, a test PKI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.deploy.mosquitto_harness import Broker, Client, render_production
from tests.deploy.pki import PkiPaths, make_test_pki

StartBroker = Callable[[Path, int], Broker]


@pytest.fixture
def start_broker(tmp_path: Path) -> Iterator[StartBroker]:
    """Start brokers from rendered configs; every one is stopped when the test ends."""
    brokers: list[Broker] = []

    def start(config: Path, port: int) -> Broker:
        broker = Broker(config, port, tmp_path / f"mosquitto-{len(brokers)}.log").start()
        brokers.append(broker)
        return broker

    try:
        yield start
    finally:
        for broker in brokers:
            broker.stop()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    try:
        yield made
    finally:
        for c in made:
            c.close()


@pytest.fixture
def pki(tmp_path: Path) -> PkiPaths:
    return make_test_pki(tmp_path / "pki", ["gw-01", "gw-02"])


@pytest.fixture
def production(tmp_path: Path, pki: PkiPaths, start_broker: StartBroker) -> int:
    """A broker from production.conf + the shipped acl file; returns its port."""
    config, port = render_production(tmp_path, pki)
    start_broker(config, port)
    return port
