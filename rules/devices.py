"""What the rules know of a device: the registry's facts the conditions and scopes use."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One registered device, as the engine sees it."""

    device: str  # device id, as in the wire messages
    gateway: str  # gateway id
    type: str  # device type: smoke, ebike, manhole, flood (not the profile name)
    grid: str = ""  # grid id (网格)
    building: str = ""  # building id; correlation groups by it
    community: str = ""  # community id (社区)
    heartbeat_s: float = 60.0  # the gateway's heartbeat for this device; deadman is a multiple
