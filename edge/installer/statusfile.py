"""Reading a running gateway's ``status.json`` (written each second by edge.status)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.installer.errors import GatewayNotRunningError
from edge.status import read_status

STALE_AFTER_S = 5.0
STATUS_FILE = "status.json"


@dataclass(frozen=True)
class GatewayState:
    """One reading of the status file and how old it is."""

    path: Path
    data: dict[str, Any]
    age_s: float

    @property
    def running(self) -> bool:
        return self.age_s <= STALE_AFTER_S

    def device_values(self, device_id: str) -> dict[str, Any] | None:
        """The last good values the gateway read from *device_id*, if it polls it."""
        device = self.data.get("devices", {}).get(device_id)
        if not isinstance(device, dict):
            return None
        values = device.get("values")
        return dict(values) if isinstance(values, dict) else {}


def read_state(state_dir: Path, *, now: float | None = None) -> GatewayState:
    """Read ``state_dir/status.json``; GatewayNotRunningError if it is missing or unreadable."""
    path = state_dir / STATUS_FILE
    try:
        data = read_status(path)
    except FileNotFoundError:
        raise GatewayNotRunningError(
            f"gateway not running: no {path} (has it ever run here?)"
        ) from None
    except (OSError, json.JSONDecodeError) as err:
        raise GatewayNotRunningError(f"gateway not running: cannot read {path}: {err}") from err
    ts = data.get("ts")
    age = (
        (time.time() if now is None else now) - ts if isinstance(ts, int | float) else float("inf")
    )
    return GatewayState(path, data, age)


def running_state(state_dir: Path) -> GatewayState:
    """The status of a running gateway; GatewayNotRunningError if the file is missing or stale."""
    state = read_state(state_dir)
    if not state.running:
        raise GatewayNotRunningError(
            f"gateway not running: {state.path} was last written {state.age_s:.0f} s ago"
        )
    return state
