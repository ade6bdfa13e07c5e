"""A cloud rig: test rules, a small registry and district, a fast lifecycle, a Twilio environment.

Devices stand at one spot (24.4800 N 118.0900 E) in grid-1 of community c-1, behind gateway
``gw-t`` (the gateway rig's simulators); the rules are short test versions of the shipped ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cloud.config import CloudConfig, resolve
from gridalarm.brokers import Mosquitto
from rigs.standins import TwilioStandin
from rules import DeviceInfo
from rules.devices_csv import write_devices_csv

TEST_RULES = """
device_type: smoke
category: fire
notify: page
rules:
  - id: smoke-fire
    kind: event
    event: smoke_alarm
    severity: critical
    clears: manual
    reason: "test: the detector's own alarm"
    title_en: Suspected fire
    title_zh: 疑似火警
correlations:
  - id: smoke-confirmed
    rules: [smoke-fire]
    group_by: building
    window_s: 120
    min_devices: 2
    reason: "test: two detectors in one building"
    title_en: Fire confirmed
    title_zh: 火警确认
"""
TEST_FLOOD = """
device_type: flood
category: flood
notify: page
rules:
  - id: flood-level
    kind: threshold
    measurement: level_mm
    levels:
      - {severity: warning, raise_at: 150, clear_at: 130, reason: "test"}
      - {severity: danger, raise_at: 300, clear_at: 270, reason: "test"}
    title_en: Water level high
    title_zh: 水位偏高
"""
TEST_MANHOLE = """
device_type: manhole
category: manhole
notify: page
rules:
  - id: manhole-tilt
    kind: threshold
    measurement: tilt_deg
    levels:
      - {severity: warning, raise_at: 8, clear_at: 5, reason: "test"}
    title_en: Manhole cover loose
    title_zh: 井盖松动
"""
TEST_EBIKE = """
device_type: ebike
category: ebike
notify: page
rules:
  - id: ebike-repeated
    kind: count
    event: ebike_detected
    min_count: 3
    window_s: 600
    severity: warning
    reason: "test"
    title_en: Repeated e-bike entries
    title_zh: 电动车反复进入电梯
"""

REGISTRY = [
    DeviceInfo("smk-0001", "gw-t", "smoke", "grid-1", "bldg-7", "c-1", 5.0),
    DeviceInfo("smk-0002", "gw-t", "smoke", "grid-1", "bldg-7", "c-1", 5.0),
    DeviceInfo("fl-0001", "gw-t", "flood", "grid-1", "", "c-1", 5.0),
    DeviceInfo("mh-0001", "gw-t", "manhole", "grid-1", "", "c-1", 5.0),
    DeviceInfo("eb-0001", "gw-t", "ebike", "grid-1", "bldg-7", "c-1", 5.0),
]


def write_rules(directory: Path) -> Path:
    """The test rules as ``directory/rules/*.yaml``; returns that folder."""
    rules = directory / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    for name, text in [
        ("smoke", TEST_RULES),
        ("flood", TEST_FLOOD),
        ("manhole", TEST_MANHOLE),
        ("ebike", TEST_EBIKE),
    ]:
        (rules / f"{name}.yaml").write_text(text, encoding="utf-8")
    return rules


def cloud_config(broker: Mosquitto, directory: Path, **extra: Any) -> CloudConfig:
    """A cloud on *broker* with the test rules and REGISTRY, its files in *directory*."""
    write_rules(directory)
    (directory / "devices.csv").write_text(write_devices_csv(REGISTRY), encoding="utf-8")
    config = CloudConfig.model_validate(
        {
            "mqtt": {"url": broker.url, "client_id": "cloud-test"},
            "database_url": "sqlite:///cloud.sqlite",
            "rules_dir": "rules",
            "devices_csv": "devices.csv",
            "sink": {"kind": "sqlite", "path": "readings.sqlite"},
            "metrics_listen": None,
            **extra,
        }
    )
    return resolve(config, directory)


FROM = "+15005550006"
# the smoke detectors stand at 24.4800 N 118.0900 E; w-near is 100 m away, w-far 1.5 km
WORKERS = """id,name,phone,locale,role,community,grids,push_subscription
w-near,陈丽,+8613800000001,zh-CN,worker,c-1,grid-1,
w-far,王强,+8613800000002,en,worker,c-1,grid-1,
w-other,林芳,+8613800000003,zh-CN,worker,c-1,grid-2,
sup-1,黄主任,+8613800000010,zh-CN,supervisor,c-1,grid-1,
cmd-1,郑指挥,+8613800000020,zh-CN,commander,,,
"""
SHIFTS = "worker,weekdays,start,end,tz\n" + "".join(
    f"{w},daily,00:00,24:00,Asia/Shanghai\n"
    for w in ("w-near", "w-far", "w-other", "sup-1", "cmd-1")
)
LIFECYCLE = """
sla:
  critical: {ack_s: 60, on_site_s: 600, resolve_s: 3600}
  danger: {ack_s: 60, on_site_s: 600, resolve_s: 3600}
  warning: {ack_s: 60, on_site_s: 600, resolve_s: 3600}
  info: {ack_s: 60, on_site_s: 600, resolve_s: 3600}
fanout: {critical: 1}
policies:
  fast:
    steps:
      - {wait_s: 0, target: next_nearest}
      - {wait_s: 3, target: next_nearest}
      - {wait_s: 3, target: grid_supervisor}
policy_by_severity: {critical: fast, danger: fast, warning: fast, info: fast}
grouping: {window_s: 1}
outbox: {channels: [sms, console], retries_per_channel: 2, backoff_base_s: 0.2, backoff_max_s: 1}
"""


def district(directory: Path) -> Path:
    """The district files (workers, shifts, grids, device places) and ``lifecycle.yaml``."""
    reg = directory / "district"
    reg.mkdir(parents=True)
    (reg / "communities.csv").write_text(
        "id,name_zh,name_en\nc-1,叶厝社区,Yecuo\n", encoding="utf-8"
    )
    square = [
        [118.085, 24.475],
        [118.095, 24.475],
        [118.095, 24.485],
        [118.085, 24.485],
        [118.085, 24.475],
    ]
    other = [[[x + 0.02, y] for x, y in square]]
    grids = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"id": "grid-1", "community": "c-1", "name": "第1网格"},
                "geometry": {"type": "Polygon", "coordinates": [square]},
            },
            {
                "type": "Feature",
                "properties": {"id": "grid-2", "community": "c-1", "name": "第2网格"},
                "geometry": {"type": "Polygon", "coordinates": other},
            },
        ],
    }
    (reg / "grids.geojson").write_text(json.dumps(grids), encoding="utf-8")
    (reg / "devices.csv").write_text(write_devices_csv(REGISTRY), encoding="utf-8")
    locations = "device,lat,lon,address,building,floor,owner,owner_phone\n" + "".join(
        f"{d.device},24.4800,118.0900,叶厝路1号,7号楼,1,包饼店,+8613900000001\n" for d in REGISTRY
    )
    (reg / "device_locations.csv").write_text(locations, encoding="utf-8")
    (reg / "workers.csv").write_text(WORKERS, encoding="utf-8")
    (reg / "shifts.csv").write_text(SHIFTS, encoding="utf-8")
    (directory / "lifecycle.yaml").write_text(LIFECYCLE, encoding="utf-8")
    return reg


def twilio_environ(twilio: TwilioStandin) -> dict[str, str]:
    """The environment that points the real twilio client (through the cloud's settings) at
    the stand-in; TWILIO_REGION and TWILIO_EDGE must be unset."""
    return {
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_FROM_NUMBER": FROM,
        "GRIDALARM_TWILIO_API_URL": twilio.url,
        "GRIDALARM_LINK_SECRET": "s" * 32,
    }
