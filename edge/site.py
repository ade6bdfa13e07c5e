"""A gateway's whole setup: its config and the device profiles it names, cross-checked.

Nothing starts half-configured: every reference (bus ids, profile names, protocol of a
profile against its bus) is checked here, and every problem is reported with file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.config import GatewayConfig, read_gateway_config
from edge.errors import EdgeError
from edge.profile import ProfileSet
from wire.yamlconf import ConfigError, ConfigIssue, line_of


@dataclass(frozen=True)
class Site:
    path: Path
    config: GatewayConfig
    profiles: ProfileSet


def load_site(path: Path) -> Site:
    """Load and check a gateway config and its profiles; raise ConfigError listing every issue."""
    config, data = read_gateway_config(path)
    profiles = ProfileSet.load(config.profile_dirs)
    issues = _check(config, data, str(path), profiles)
    if issues:
        raise ConfigError(issues)
    return Site(path, config, profiles)


def _check(
    config: GatewayConfig, data: Any, filename: str, profiles: ProfileSet
) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []

    def issue(loc: tuple[str | int, ...], message: str) -> None:
        field = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
        issues.append(ConfigIssue(filename, line_of(data, loc), field, message))

    buses: dict[str, int] = {}
    for i, bus in enumerate(config.buses):
        if bus.id in buses:
            issue(("buses", i, "id"), f"duplicate bus id {bus.id!r}")
        buses[bus.id] = i
    seen: set[str] = set()
    for i, dev in enumerate(config.devices):
        if dev.id in seen:
            issue(("devices", i, "id"), f"duplicate device id {dev.id!r}")
        seen.add(dev.id)
        if dev.bus not in buses:
            issue(
                ("devices", i, "bus"),
                f"unknown bus {dev.bus!r} (known: {', '.join(buses) or 'none'})",
            )
            continue
        try:
            profile = profiles.get(dev.profile)
        except EdgeError:
            issue(
                ("devices", i, "profile"),
                f"unknown profile {dev.profile!r} (known: {', '.join(profiles.names())})",
            )
            continue
        bus_protocol = config.bus(dev.bus).protocol
        wanted = "ascii" if bus_protocol == "ascii" else "modbus"
        if profile.protocol != wanted:
            issue(
                ("devices", i, "profile"),
                f"profile {dev.profile!r} speaks {profile.protocol}, "
                f"bus {dev.bus!r} speaks {bus_protocol}",
            )
    return issues
