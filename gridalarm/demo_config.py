"""What the demo writes before it starts anything: the gateway's config and the cloud's."""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path

import yaml
from sqlalchemy.engine import Engine as Database

from cloud.cli import DEMO_DATABASE
from cloud.config import CloudConfig, resolve
from cloud.console.users import Role, UserError, add_user, set_password
from cloud.dispatch.service import SHIPPED_LIFECYCLE
from cloud.registry import write_demo_district
from cloud.registry.places_csv import read_locations_csv
from firmware_sim import SimulatorSet
from gridalarm.brokers import BrokerInfo
from rules.devices import DeviceInfo
from rules.devices_csv import read_devices_csv, write_devices_csv

GATEWAY_ID = "gw-demo"
PROFILE_OF = {"rtu": "{type}", "tcp": "{type}", "ascii": "{type}-ascii"}
SIMULATED_HEARTBEAT_S = 30.0
FLEET_HEARTBEAT_S = 300.0  # ~1,500 devices: a few messages a second, deadman after 15 min
LINK_KEY_FILE = "link.secret"


def gateway_yaml(sims: SimulatorSet, broker: BrokerInfo, gateway_id: str = GATEWAY_ID) -> str:
    """A gateway config that reads every simulated device, as an installer would write it."""
    buses = []
    for ep in sims.endpoints():
        if ep.transport == "tcp":
            host, port = ep.address.rsplit(":", 1)
            buses.append({"id": ep.bus, "kind": "tcp", "host": host, "port": int(port)})
        else:
            protocol = "ascii" if ep.transport == "ascii" else "modbus-rtu"
            buses.append({"id": ep.bus, "kind": "serial", "protocol": protocol, "port": ep.address})
    devices = [
        {
            "id": d.id,
            "bus": d.bus,
            "unit": d.unit,
            "profile": PROFILE_OF[d.transport].format(type=d.type),
            "poll_interval_s": 0.5,
            "heartbeat_s": SIMULATED_HEARTBEAT_S,
        }
        for d in sims.devices()
    ]
    config = {
        "gateway_id": gateway_id,
        "mqtt": {"url": broker.url, "protocol": "5" if "5" in broker.protocols else "3.1.1"},
        "outbox": {"path": "outbox.sqlite"},
        "state_dir": ".",
        "buses": buses,
        "devices": devices,
    }
    body: str = yaml.safe_dump(config, sort_keys=False)
    return "# Written by `gridalarm demo` from the simulators it started.\n" + body


def place_devices(sims: SimulatorSet, district: Path) -> list[DeviceInfo]:
    """Write the demo district into *district*: the simulated devices behind the demo gateway,
    the rest behind their own (fleet) gateways; return the fleet's devices."""
    write_demo_district(district)
    devices = read_devices_csv(
        (district / "devices.csv").read_text(encoding="utf-8"), "devices.csv"
    )
    simulated = {d.id for d in sims.devices()}
    placed = [
        dataclasses.replace(d, gateway=GATEWAY_ID, heartbeat_s=SIMULATED_HEARTBEAT_S)
        if d.device in simulated
        else dataclasses.replace(d, heartbeat_s=FLEET_HEARTBEAT_S)
        for d in devices
    ]
    write_text(district / "devices.csv", write_devices_csv(placed))
    return [d for d in placed if d.gateway != GATEWAY_ID]


def locate(district: Path, device: str) -> tuple[float, float] | None:
    """Where *device* is in the district (lat, lon), from its device_locations.csv."""
    text = (district / "device_locations.csv").read_text(encoding="utf-8")
    for _line, place in read_locations_csv(text, "device_locations.csv"):
        if place.device == device:
            return place.lat, place.lon
    return None


CONSOLE_USER = "demo"
CONSOLE_ACCOUNT_FILE = "console.password"


def console_password(state_dir: Path) -> str:
    """The demo account's console password: made once per state directory (so a fresh run
    gets a new one), kept beside the demo's other files."""
    path = state_dir / CONSOLE_ACCOUNT_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    password = secrets.token_urlsafe(12)
    write_text(path, password)
    path.chmod(0o600)
    return password


def console_account(db: Database, password: str) -> None:
    """A dispatcher account ``demo`` with *password*, so the console can be signed in to."""
    try:
        add_user(db, CONSOLE_USER, password, Role.DISPATCHER)
    except UserError:  # --keep-state: the account exists; its password is the kept one
        set_password(db, CONSOLE_USER, password)


def link_secret(state_dir: Path) -> str:
    """The demo's link secret: kept in the state directory, so links survive --keep-state."""
    path = state_dir / LINK_KEY_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    secret = secrets.token_urlsafe(32)
    write_text(path, secret)
    path.chmod(0o600)
    return secret


LIFECYCLE_FILE = "lifecycle.yaml"
MIN_SLA_S = 10.0  # however fast the morning runs, a person gets this long before overdue
MIN_GROUPING_S = 1.0


def paced_lifecycle(speed: float) -> str:
    """The shipped lifecycle on the morning's clock: SLAs, escalation waits and the grouping
    window divided by *speed*, so a compressed morning is dispatched as a real one would be."""
    doc = yaml.safe_load(SHIPPED_LIFECYCLE.read_text(encoding="utf-8"))
    for sla in doc["sla"].values():
        for key, value in sla.items():
            sla[key] = max(MIN_SLA_S, value / speed)
    for policy in doc["policies"].values():
        for step in policy["steps"]:
            step["wait_s"] = step["wait_s"] / speed
    doc["grouping"]["window_s"] = max(MIN_GROUPING_S, doc["grouping"]["window_s"] / speed)
    body: str = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    return f"# Written by `gridalarm demo --speed {speed:g}` from {SHIPPED_LIFECYCLE.name}.\n{body}"


def demo_cloud_config(
    broker: BrokerInfo, state_dir: Path, http: str, secret: str, speed: float = 1.0
) -> CloudConfig:
    """A cloud for the demo: the district in ``state_dir/district`` (see ``place_devices``),
    the shipped rules, the shipped lifecycle on the morning's clock, SQLite, and the workers'
    web page on *http*."""
    write_text(state_dir / LIFECYCLE_FILE, paced_lifecycle(speed))
    config = CloudConfig.model_validate(
        {
            "mqtt": {
                "url": broker.url,
                "client_id": "gridalarm-demo-cloud",
                "protocol": "5" if "5" in broker.protocols else "3.1.1",
            },
            "database_url": f"sqlite:///{DEMO_DATABASE}",
            "sink": {"kind": "sqlite", "path": "readings.sqlite"},
            "metrics_listen": None,
            "dispatch": {
                "registry_dir": "district",
                "lifecycle": LIFECYCLE_FILE,
                "http_listen": http,
                "public_base_url": f"http://{http}",
                "link_secret": secret,
            },
        }
    )
    return resolve(config, state_dir)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
