"""Blocking client of the control server, for the CLI."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from firmware_sim.errors import SimError
from firmware_sim.statefile import read_state

TIMEOUT_S = 5.0


class NoSimulatorError(SimError):
    """No simulator is running (no state file, or nobody listening at its address)."""


def call(state_file: Path, request: dict[str, Any]) -> dict[str, Any]:
    """Send one request to the simulator named by *state_file*; return its reply."""
    state = read_state(state_file)
    if state is None:
        raise NoSimulatorError(f"no running simulator (no {state_file}); start `gridalarm sim run`")
    host, _, port = str(state["control"]).rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as sock:
            sock.sendall(json.dumps(request).encode() + b"\n")
            line = sock.makefile("rb").readline()
    except OSError as err:
        raise NoSimulatorError(
            f"no running simulator at {state['control']} ({err.strerror or err}); "
            f"stale {state_file}?"
        ) from err
    if not line:
        raise NoSimulatorError(f"simulator at {state['control']} closed the connection")
    reply: dict[str, Any] = json.loads(line)
    return reply
