"""The demo's state directory: a fresh start per run, or the last run continued.

A run leaves open alarms, escalation steps and queued messages behind; started again on the
same files, yesterday's open fire alarms would climb to today's workers. So each run starts
from nothing unless asked to keep the state. Only the files the demo itself writes are
removed, by name, so a ``--state-dir`` pointed at a folder with other files loses none of them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

# what the demo's parts write into the state directory (databases with their WAL files)
DATABASES = ("cloud.sqlite", "readings.sqlite", "outbox.sqlite")
FILES = (
    "gateway.yaml",
    "status.json",
    "fleet.json",
    "link.secret",
    "lifecycle.yaml",
    "console.password",
)
FOLDERS = ("district",)


def demo_files(state_dir: Path) -> list[Path]:
    """Every file or folder of a previous demo run in *state_dir* (nothing else)."""
    if not state_dir.is_dir():
        return []
    found: list[Path] = []
    for name in DATABASES:
        found += [p for p in state_dir.glob(f"{name}*") if p.name[len(name) :] in _SIDECARS]
    found += [state_dir / n for n in (*FILES, *FOLDERS) if (state_dir / n).exists()]
    return sorted(found)


_SIDECARS = ("", "-wal", "-shm", "-journal")


def fresh_start(state_dir: Path) -> int:
    """Remove what a previous run left in *state_dir*; return how many entries went."""
    gone = demo_files(state_dir)
    for path in gone:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return len(gone)
