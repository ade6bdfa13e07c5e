"""The fault suite's table: each test adds its row; printed and written at the end of the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.durations import ENV, LENGTH
from tests.faults.report import Row, render

ROWS = pytest.StashKey[list[Row]]()
TABLE_FILE = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[ROWS] = []


@pytest.fixture(scope="session", autouse=True)
def _table_file(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
    request.config.stash[TABLE_FILE] = tmp_path_factory.getbasetemp() / "fault-table.md"


@pytest.fixture
def fault_table(request: pytest.FixtureRequest) -> list[Row]:
    """Where a fault test puts its row (before it asserts, so a failure is in the table too)."""
    return request.config.stash[ROWS]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    rows = config.stash.get(ROWS, [])
    if not rows:
        return
    text = render(rows, f"{ENV}={LENGTH.name}")
    terminalreporter.section("fault table")
    terminalreporter.write(text)
    path = config.stash.get(TABLE_FILE, None)
    if path is not None:
        path.write_text(text, encoding="utf-8")
        terminalreporter.write_line(f"written to {path}")
