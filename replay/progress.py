"""A progress bar for long replays and generation, redrawn at most a few times a second."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from replay.reader import RecordingReader
from replay.replay import Progress as ReplayProgress

REDRAW_S = 0.25


class ProgressBar:
    """Shown on stderr when it is a terminal; silent (and nearly free) otherwise."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.enabled = enabled and console.is_terminal
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            auto_refresh=False,
            disable=not self.enabled,
        )
        self._task: TaskID | None = None
        self._drawn = 0.0

    def __enter__(self) -> ProgressBar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def start(self, description: str, total: float) -> None:
        if self.enabled:
            self._task = self._progress.add_task(description, total=total, detail="")

    def _update(self, completed: float, detail: str = "") -> None:
        if self._task is None or (now := time.monotonic()) - self._drawn < REDRAW_S:
            return
        self._drawn = now
        self._progress.update(self._task, completed=completed, detail=detail)
        self._progress.refresh()

    def replay(self, p: ReplayProgress) -> None:
        if self.enabled and self._task is None:
            self.start("replaying", p.size)
        self._update(p.compressed_read, f"{p.lines:,} msgs {p.readings:,} readings")

    def bytes(self, reader: RecordingReader) -> None:
        self._update(reader.stats.compressed_read)

    def fraction(self, done: float) -> None:
        self._update(done)
