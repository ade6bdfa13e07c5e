"""Gateway configuration: one pydantic model per concern, loaded once from YAML."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

from wire import MAX_OUTBOX_MESSAGES
from wire.yamlconf import parse_yaml, unreadable, validate

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parity(enum.StrEnum):
    NONE = "N"
    EVEN = "E"
    ODD = "O"


class SerialBus(_Model):
    """An RS485 line behind a serial port: Modbus RTU or an ASCII line protocol."""

    id: Ident = Field(description="Bus id, used in logs and counters, e.g. 'bus-1'.")
    kind: Literal["serial"] = Field(description="Serial line.")
    protocol: Literal["modbus-rtu", "ascii"] = Field(
        "modbus-rtu", description="Framing on the line."
    )
    port: str = Field(description="Serial device path, e.g. /dev/ttyUSB0 or /dev/pts/3.")
    baud: int = Field(9600, description="Baud rate.", gt=0)
    bytesize: Literal[7, 8] = Field(8, description="Data bits.")
    parity: Parity = Field(Parity.NONE, description="Parity: N, E or O.")
    stopbits: Literal[1, 2] = Field(1, description="Stop bits.")


class TcpBus(_Model):
    """A Modbus TCP server (a gateway module or a device with Ethernet)."""

    id: Ident = Field(description="Bus id, used in logs and counters.")
    kind: Literal["tcp"] = Field(description="Modbus TCP.")
    protocol: Literal["modbus-tcp"] = Field("modbus-tcp", description="Framing.")
    host: str = Field(description="Host name or address.")
    port: int = Field(502, description="TCP port.", gt=0, lt=65536)


Bus = Annotated[SerialBus | TcpBus, Field(discriminator="kind")]


class DeviceConfig(_Model):
    """One field device on one bus."""

    id: Ident = Field(description="Device id, unique in the gateway, e.g. 'smk-0042'.")
    bus: Ident = Field(description="Id of the bus the device hangs on.")
    unit: int = Field(description="Modbus unit id / ASCII address, 1-247.", ge=1, le=247)
    profile: str = Field(
        description="Device profile name, e.g. 'smoke' (see `gridalarm edge profiles`)."
    )
    poll_interval_s: float = Field(1.0, description="Seconds between polls.", gt=0)
    timeout_s: float = Field(0.5, description="Seconds to wait for a reply.", gt=0)
    retries: int = Field(1, description="Extra attempts after a failed transaction.", ge=0, le=5)
    heartbeat_s: float = Field(60.0, description="Publish all values at least this often.", gt=0)


class TlsConfig(_Model):
    """TLS towards the broker."""

    ca_file: Path | None = Field(
        None, description="CA bundle that signed the broker's certificate."
    )
    cert_file: Path | None = Field(None, description="Client certificate (mutual TLS).")
    key_file: Path | None = Field(None, description="Client private key (mutual TLS).")
    insecure: bool = Field(False, description="Skip host-name verification (testing only).")


_SCHEME_TLS = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of a broker URL; ValueError says what is wrong with it.

    The one rule for broker URLs: the config refuses what the uplink could not connect to.
    """
    parts = urlsplit(url)
    if parts.scheme not in _SCHEME_TLS:
        raise ValueError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    try:
        port = parts.port
    except ValueError as err:
        raise ValueError(f"broker URL {url!r}: {err}") from None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"broker URL {url!r}: only scheme://host:port, no path or query")
    tls = _SCHEME_TLS[parts.scheme]
    return parts.hostname or "127.0.0.1", port or (8883 if tls else 1883), tls


def _broker_url(url: str) -> str:
    broker_address(url)
    return url


BrokerUrl = Annotated[str, AfterValidator(_broker_url)]


class MqttConfig(_Model):
    """The uplink to the broker."""

    url: BrokerUrl = Field(
        "mqtt://127.0.0.1:1883",
        description="mqtt://host:port or mqtts://host:port; with `urls`, the first of them.",
    )
    urls: list[BrokerUrl] = Field(
        default_factory=list,
        min_length=1,
        description="The nodes of a clustered broker, tried in turn when a connection fails "
        "(instead of `url`).",
    )
    protocol: Literal["3.1.1", "5"] = Field("5", description="MQTT protocol version.")
    client_id: str | None = Field(
        None, description="Client id; default 'gridalarm-edge-<gateway id>'."
    )
    username: str | None = Field(None, description="User name, if the broker wants one.")
    password: SecretStr | None = Field(
        None, description="Password (prefer GRIDALARM_MQTT_PASSWORD)."
    )
    tls: TlsConfig | None = Field(None, description="TLS settings; implied by mqtts://.")
    keepalive_s: int = Field(30, description="MQTT keep-alive in seconds.", ge=5)
    max_inflight: int = Field(
        1000, description="QoS1 publishes awaiting PUBACK at once.", ge=1, le=20000
    )

    @model_validator(mode="before")
    @classmethod
    def _first_of_urls(cls, data: Any) -> Any:
        """With `urls`, `url` is their first, so whatever shows one broker shows that one."""
        if not isinstance(data, dict) or "urls" not in data:
            return data
        if "url" in data:
            raise ValueError("give either url or urls, not both")
        first = data["urls"][0] if isinstance(data["urls"], list) and data["urls"] else None
        try:
            broker_address(first)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            return data  # the error is reported once, at the list's item
        return {**data, "url": first}

    @property
    def brokers(self) -> list[str]:
        """Every broker URL, in the order they are tried."""
        return list(self.urls) or [self.url]


class DropPolicy(enum.StrEnum):
    DROP_OLDEST_TELEMETRY = "drop_oldest_telemetry"


class OutboxConfig(_Model):
    """The durable store-and-forward queue."""

    path: Path = Field(Path("var/outbox.sqlite"), description="SQLite file of the outbox.")
    max_messages: int = Field(
        1_000_000,
        description="Bound on queued messages (at most the wire contract's MAX_OUTBOX_MESSAGES).",
        ge=100,
        le=MAX_OUTBOX_MESSAGES,
    )
    policy: DropPolicy = Field(
        DropPolicy.DROP_OLDEST_TELEMETRY,
        description=(
            "When full: drop the oldest telemetry first, never events; a drop record says which."
        ),
    )
    fsync: bool = Field(
        False, description="fsync every commit (survives power loss, not only kill -9)."
    )


class GatewayConfig(_Model):
    """A whole gateway: who it is, its uplink, its buses and devices."""

    gateway_id: Ident = Field(description="Gateway id: the second level of every topic.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="Uplink.")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Store-and-forward.")
    profile_dirs: list[Path] = Field(
        default_factory=list, description="Extra folders of device profiles."
    )
    state_dir: Path = Field(Path("var"), description="Folder for status and sequence state.")
    buses: list[Bus] = Field(default_factory=list, description="Field buses.")
    devices: list[DeviceConfig] = Field(default_factory=list, description="Field devices.")

    def bus(self, bus_id: str) -> SerialBus | TcpBus:
        return next(b for b in self.buses if b.id == bus_id)


def read_gateway_config(path: Path) -> tuple[GatewayConfig, Any]:
    """Read and validate a gateway YAML file; return the model and the parsed YAML (for lines).

    Relative paths in the file are taken relative to the file's folder. Raises ConfigError
    naming file, line and field.
    """
    data = read_gateway_yaml(path)
    return gateway_config(data, path), data


def read_gateway_yaml(path: Path) -> Any:
    """The parsed YAML of a gateway file (with lines); ConfigError if unreadable or not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise unreadable(str(path), err) from err
    return parse_yaml(text, str(path))


def gateway_config(data: Any, path: Path) -> GatewayConfig:
    """Validate parsed YAML of *path*; relative paths are taken from the file's folder."""
    config = validate(GatewayConfig, data, str(path))
    base = path.parent
    mqtt = config.mqtt
    if mqtt.tls is not None:
        tls = mqtt.tls
        files = {
            name: base / f
            for name, f in (
                ("ca_file", tls.ca_file),
                ("cert_file", tls.cert_file),
                ("key_file", tls.key_file),
            )
            if f is not None
        }
        mqtt = mqtt.model_copy(update={"tls": tls.model_copy(update=files)})
    return config.model_copy(
        update={
            "mqtt": mqtt,
            "outbox": config.outbox.model_copy(update={"path": base / config.outbox.path}),
            "state_dir": base / config.state_dir,
            "profile_dirs": [base / p for p in config.profile_dirs],
        }
    )
