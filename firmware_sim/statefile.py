"""The running simulator's state file: where its control server listens, what it serves."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from firmware_sim.simset import SimulatorSet

FILE_NAME = "sim.json"


def state_path() -> Path:
    """``$GRIDALARM_STATE_DIR/sim.json``, default ``./var/sim.json``."""
    return Path(os.environ.get("GRIDALARM_STATE_DIR", "var")) / FILE_NAME


def write_state(path: Path, control: str, sims: SimulatorSet) -> None:
    """Write atomically, so a reader never sees half a file."""
    state = {
        "pid": os.getpid(),
        "control": control,
        "endpoints": [asdict(e) for e in sims.endpoints()],
        "devices": [asdict(d) for d in sims.devices()],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_state(path: Path) -> dict[str, Any] | None:
    """The state, or None when no simulator has written one."""
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state


def remove_state(path: Path) -> None:
    """Forget the state (on exit)."""
    path.unlink(missing_ok=True)
