"""Test-only checks on the gateway rig (rigs/gateway.py): no gap in sequence, all reporting."""

from __future__ import annotations

from typing import Any

from rigs.gateway import GatewayProcess, sequenced
from tests.support import Recorder, until


def assert_no_gap(messages: list[dict[str, Any]], last_seq: int) -> None:
    """Every seq 1..last_seq arrived (or is named by a drop record); a repeat is identical."""
    by_seq: dict[int, dict[str, Any]] = {}
    for m in messages:
        previous = by_seq.setdefault(m["seq"], m)
        assert previous == m, f"seq {m['seq']} used for two different messages: {previous} vs {m}"
    dropped = {
        s for m in messages if m["t"] == "dropped" for a, b in m["ranges"] for s in range(a, b + 1)
    }
    missing = sorted(set(range(1, last_seq + 1)) - set(by_seq) - dropped)
    assert not missing, f"{len(missing)} sequence numbers never arrived, first {missing[:10]}"


async def wait_gateway_ready(
    gw: GatewayProcess, recorder: Recorder, devices: int, timeout_s: float = 30
) -> None:
    def all_reporting() -> bool:
        seen = {
            m["dev"]
            for m in sequenced(recorder.snapshot())
            if m["t"] == "data" and m["q"] == "good"
        }
        return len(seen) >= devices

    try:
        await until(all_reporting, timeout_s, "every device to report good data")
    except BaseException:
        print(gw.output()[-5000:])
        raise
