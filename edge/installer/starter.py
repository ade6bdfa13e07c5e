"""`init`: a commented starter gateway config that validates as written."""

from __future__ import annotations

import os
from pathlib import Path

from edge.installer.errors import UsageError
from wire import WireError
from wire.topics import check_id

_TEMPLATE = """\
# gridalarm edge gateway configuration.
#
# Check it with:     gridalarm edge validate --config {filename}
# Find devices with: gridalarm edge scan --port /dev/ttyUSB0 --units 1-32
# Add a device with: gridalarm edge add-device --config {filename} \\
#                      --id ID --bus BUS --unit N --profile NAME
# Run the gateway:   gridalarm edge run --config {filename}
#
# Relative paths below are taken relative to this file's folder.

# Who this gateway is: the second level of every MQTT topic (ga/v1/<gateway_id>/...).
# 1-64 of A-Z a-z 0-9 _ . - , starting with a letter or digit.
gateway_id: {gateway_id}

# The uplink to the MQTT broker.
mqtt:
  # mqtt://host:port for plain TCP, mqtts://host:port for TLS.
  url: mqtt://127.0.0.1:1883
  # MQTT protocol version: "5" or "3.1.1".
  protocol: "5"
  # Credentials, if the broker wants them. Prefer the environment for the password:
  # GRIDALARM_MQTT_PASSWORD=...
  # username: {gateway_id}
  # TLS (implied by mqtts://): the CA that signed the broker, and for mutual TLS our own pair.
  # tls:
  #   ca_file: certs/ca.pem
  #   cert_file: certs/{gateway_id}.pem
  #   key_file: certs/{gateway_id}.key

# The store-and-forward queue: every message waits here until the broker acknowledged it,
# so a broker outage or a restart loses nothing.
outbox:
  path: var/outbox.sqlite
  # When full, the oldest telemetry is dropped first (never events); a drop record says which.
  max_messages: 1000000
  # true: fsync every commit (survives power loss, not only a crash), slower on SD cards.
  fsync: false

# Where the running gateway writes status.json (read by `gridalarm edge status`).
state_dir: var

# Extra folders of device profiles (*.yaml), on top of the shipped ones
# (list them with `gridalarm edge profiles`).
profile_dirs: []

# Field buses. Every device below names one of these by id.
buses:
  # An RS485 line on a USB adapter speaking Modbus RTU (most devices: 9600 8N1).
  - id: bus-1
    kind: serial
    protocol: modbus-rtu    # or "ascii" for ASCII line-protocol devices (profile smoke-ascii)
    port: /dev/ttyUSB0
    baud: 9600
    bytesize: 8
    parity: "N"             # N, E or O
    stopbits: 1
  # A Modbus TCP gateway module (or a device with Ethernet); several units behind one address.
  - id: tcp-1
    kind: tcp
    host: 192.168.1.50
    port: 502

# Field devices: id (unique, used in topics), bus, Modbus unit id (1-247) and profile.
# Optional per device: poll_interval_s (1.0), timeout_s (0.5), retries (1), heartbeat_s (60).
devices:
  - id: smk-0001
    bus: bus-1
    unit: 1
    profile: smoke
  - id: mh-0001
    bus: bus-1
    unit: 2
    profile: manhole
    poll_interval_s: 5.0
  - id: flood-0001
    bus: tcp-1
    unit: 1
    profile: flood
  - id: ebike-0001
    bus: tcp-1
    unit: 2
    profile: ebike
"""


def starter_config(gateway_id: str, filename: str = "gateway.yaml") -> str:
    """The text of a starter config for *gateway_id*."""
    return _TEMPLATE.format(gateway_id=gateway_id, filename=filename)


def write_starter(path: Path, gateway_id: str, *, force: bool = False) -> None:
    """Write the starter config to *path*; refuse to overwrite unless *force*."""
    try:
        check_id(gateway_id, "gateway")
    except WireError as err:
        raise UsageError(str(err)) from err
    if path.exists() and not force:
        raise UsageError(f"{path} exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(starter_config(gateway_id, path.name), encoding="utf-8")
    os.replace(tmp, path)
