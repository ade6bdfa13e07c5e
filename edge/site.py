"""A gateway's whole setup: its config and the device profiles it names, cross-checked.

Nothing starts half-configured: every reference (bus ids, profile names, protocol of a
profile against its bus, TLS files) is checked here, and every problem is reported with file
and line, all at once: the cross-checks run on each bus and device that can be read even
when other parts of the file break the schema. `edge validate` and `edge run` both load
through :func:`load_site`, so validate accepts exactly what run starts with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from edge.config import (
    Bus,
    DeviceConfig,
    GatewayConfig,
    SerialBus,
    TcpBus,
    gateway_config,
    read_gateway_yaml,
)
from edge.errors import EdgeError
from edge.profile import ProfileSet
from wire.yamlconf import ConfigError, ConfigIssue, line_of

_BUS: TypeAdapter[SerialBus | TcpBus] = TypeAdapter(Bus)


@dataclass(frozen=True)
class Site:
    path: Path
    config: GatewayConfig
    profiles: ProfileSet


def load_site(path: Path) -> Site:
    """Load and check a gateway config and its profiles; raise ConfigError listing every issue."""
    data = read_gateway_yaml(path)  # unreadable or not YAML: nothing more can be checked
    issues: list[ConfigIssue] = []
    config: GatewayConfig | None = None
    profiles: ProfileSet | None = None
    try:
        config = gateway_config(data, path)
    except ConfigError as err:
        issues += err.issues
    try:
        profiles = ProfileSet.load(config.profile_dirs if config else _profile_dirs(data, path))
    except ConfigError as err:
        issues += err.issues
    checks = _Checks(data, str(path))
    checks.references(profiles)
    if config is not None:
        checks.tls_files(config)
    issues += checks.issues
    if issues or config is None or profiles is None:
        raise ConfigError(sorted(issues, key=lambda i: (i.file != str(path), i.line or 0)))
    return Site(path, config, profiles)


def _profile_dirs(data: Any, path: Path) -> list[Path]:
    """The extra profile folders of a file that fails the schema elsewhere (best effort)."""
    dirs = data.get("profile_dirs") if isinstance(data, dict) else None
    if not isinstance(dirs, list):
        return []
    return [path.parent / d for d in dirs if isinstance(d, str)]


def _section(data: Any, key: str) -> list[Any]:
    items = data.get(key) if isinstance(data, dict) else None
    return items if isinstance(items, list) else []


def _text(item: Any, model: BaseModel | None, name: str) -> str | None:
    """A field of a list item: from the valid model, else the raw value if it is a string."""
    if model is not None:
        return str(getattr(model, name))
    value = item.get(name) if isinstance(item, dict) else None
    return value if isinstance(value, str) else None


class _Checks:
    """Cross-checks over the parsed YAML; each problem is an issue with file, line and field."""

    def __init__(self, data: Any, filename: str) -> None:
        self.data = data
        self.filename = filename
        self.issues: list[ConfigIssue] = []

    def issue(self, loc: tuple[str | int, ...], message: str) -> None:
        field = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
        self.issues.append(ConfigIssue(self.filename, line_of(self.data, loc), field, message))

    def _buses(self) -> dict[str, SerialBus | TcpBus | None]:
        buses: dict[str, SerialBus | TcpBus | None] = {}
        for i, item in enumerate(_section(self.data, "buses")):
            try:
                bus: SerialBus | TcpBus | None = _BUS.validate_python(item)
            except ValidationError:
                bus = None  # the schema error is reported already; its id still counts
            bus_id = _text(item, bus, "id")
            if bus_id is None:
                continue
            if bus_id in buses:
                self.issue(("buses", i, "id"), f"duplicate bus id {bus_id!r}")
            buses[bus_id] = bus
        return buses

    def references(self, profiles: ProfileSet | None) -> None:
        buses = self._buses()
        seen: set[str] = set()
        for i, item in enumerate(_section(self.data, "devices")):
            try:
                dev: DeviceConfig | None = DeviceConfig.model_validate(item)
            except ValidationError:
                dev = None
            dev_id = _text(item, dev, "id")
            if dev_id is not None and dev_id in seen:
                self.issue(("devices", i, "id"), f"duplicate device id {dev_id!r}")
            if dev_id is not None:
                seen.add(dev_id)
            bus_id, profile = _text(item, dev, "bus"), _text(item, dev, "profile")
            if bus_id is not None and bus_id not in buses:
                known = ", ".join(buses) or "none"
                self.issue(("devices", i, "bus"), f"unknown bus {bus_id!r} (known: {known})")
            elif bus_id is not None and profile is not None and profiles is not None:
                self._profile(i, profile, buses[bus_id], profiles)

    def _profile(
        self, i: int, name: str, bus: SerialBus | TcpBus | None, profiles: ProfileSet
    ) -> None:
        try:
            profile = profiles.get(name)
        except EdgeError:
            known = ", ".join(profiles.names())
            self.issue(("devices", i, "profile"), f"unknown profile {name!r} (known: {known})")
            return
        if bus is None:
            return
        wanted = "ascii" if bus.protocol == "ascii" else "modbus"
        if profile.protocol != wanted:
            self.issue(
                ("devices", i, "profile"),
                f"profile {name!r} speaks {profile.protocol}, bus {bus.id!r} speaks {bus.protocol}",
            )

    def tls_files(self, config: GatewayConfig) -> None:
        tls = config.mqtt.tls
        if tls is None:
            return
        for name in ("ca_file", "cert_file", "key_file"):
            path: Path | None = getattr(tls, name)
            if path is not None and not path.is_file():
                self.issue(("mqtt", "tls", name), f"no such file: {path}")
        if (tls.cert_file is None) != (tls.key_file is None):
            self.issue(("mqtt", "tls"), "cert_file and key_file go together (mutual TLS)")
