"""Cloud configuration: one pydantic model per concern, loaded once from YAML.

Secrets come from the environment (``GRIDALARM_MQTT_PASSWORD``, ``GRIDALARM_INFLUX_TOKEN``)
so a site file can be checked in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from cloud.settings import CloudSettings
from wire.yamlconf import load_model, unreadable


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CloudMqtt(_Model):
    """The broker the cloud ingests from."""

    url: str = Field(default="mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://.")
    failover: list[str] = Field(
        default_factory=list,
        description="More URLs of the same (clustered) broker, tried in turn after `url` when a "
        "connection fails or drops.",
    )
    protocol: Literal["3.1.1", "5"] = Field(default="5", description="MQTT protocol version.")
    client_id: str = Field(
        default="gridalarm-cloud",
        description="Fixed client id: the broker keeps this persistent session while we are down.",
    )
    shared_group: str | None = Field(
        default=None,
        description="MQTT 5 shared-subscription group, to spread gateways over several workers.",
    )
    username: str | None = Field(default=None, description="User name, if the broker wants one.")
    password: SecretStr | None = Field(
        default=None, description="Password; prefer GRIDALARM_MQTT_PASSWORD."
    )
    ca_file: Path | None = Field(default=None, description="CA bundle for mqtts://.")
    cert_file: Path | None = Field(default=None, description="Client certificate (mutual TLS).")
    key_file: Path | None = Field(default=None, description="Client key (mutual TLS).")
    keepalive_s: int = Field(default=30, ge=5, description="MQTT keep-alive.")
    receive_maximum: int = Field(
        default=20_000,
        ge=100,
        le=65_535,
        description="MQTT 5: unacknowledged QoS 1 messages the broker may send us (acknowledged "
        "after each checkpoint, so at least the rate times checkpoint_interval_s).",
    )
    max_queued: int = Field(
        default=50_000,
        ge=1000,
        description="Received messages waiting for the rules; past this the socket is not read "
        "(back-pressure) until they are handled.",
    )


class SqliteSinkConfig(_Model):
    """Embedded readings store: a bounded window in SQLite."""

    kind: Literal["sqlite"] = Field(description="Embedded SQLite sink.")
    path: Path = Field(default=Path("readings.sqlite"), description="SQLite file of readings.")
    retention_s: float = Field(default=7 * 86400, gt=0, description="Keep readings this long.")
    max_rows: int = Field(default=5_000_000, ge=1000, description="Keep at most this many rows.")


class InfluxSinkConfig(_Model):
    """InfluxDB (or anything speaking /api/v2/write) through influxdb-client."""

    kind: Literal["influx"] = Field(description="InfluxDB sink.")
    url: str = Field(description="Server URL, e.g. http://127.0.0.1:8086.")
    org: str = Field(default="gridalarm", description="InfluxDB organisation.")
    bucket: str = Field(default="readings", description="InfluxDB bucket.")
    token: SecretStr | None = Field(
        default=None, description="Token; prefer GRIDALARM_INFLUX_TOKEN."
    )
    batch_size: int = Field(default=5000, ge=1, description="Points per write.")


class NoSinkConfig(_Model):
    kind: Literal["none"] = Field(description="Keep no readings (alarms only).")


class ConsoleConfig(_Model):
    """The command-centre console (``/console``) served beside the workers' page."""

    tile_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+\{z\}[^\s]*$",
        description="An internal tile server's URL template ({z}/{x}/{y}) under the grid "
        "polygons; unset: the polygons alone are the base map",
    )
    session_ttl_s: float = Field(
        default=12 * 3600, gt=60, description="How long a sign-in lasts (a wall-screen shift)."
    )


class DispatchConfig(_Model):
    """Dispatch to grid workers: lifecycle, escalation, channels, the workers' web page.

    SMS goes out when TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN / TWILIO_FROM_NUMBER are set
    (GRIDALARM_TWILIO_API_URL points at a Twilio-compatible API); otherwise to the console.
    """

    lifecycle: Path | None = Field(
        default=None, description="Lifecycle YAML (SLA, escalation, delivery); default: shipped."
    )
    registry_dir: Path | None = Field(
        default=None, description="District files imported at start (see `cloud import`)."
    )
    http_listen: str = Field(default="127.0.0.1:8080", description="host:port of the web server.")
    public_base_url: str = Field(
        default="http://127.0.0.1:8080", description="How phones and Twilio reach the web server."
    )
    link_secret: SecretStr | None = Field(
        default=None, description="Key of the signed links; prefer GRIDALARM_LINK_SECRET."
    )
    link_ttl_s: float = Field(default=86400, gt=0, description="How long an alarm link works.")
    photo_dir: Path = Field(
        default=Path("photos"),
        description="Where the photos of workers' hazard reports are kept (EXIF stripped).",
    )
    console: ConsoleConfig = Field(
        default_factory=ConsoleConfig, description="The command-centre console (/console)."
    )


class HealthConfig(_Model):
    """When /readyz says the worker is not doing its job (beside a part being in fault)."""

    max_lag_s: float = Field(
        default=30.0, gt=0, description="Oldest received message still waiting for the rules."
    )
    max_outbox_age_s: float = Field(
        default=120.0, gt=0, description="Oldest notification due but still not sent."
    )


class WebhookTls(_Model):
    """TLS for webhooks to a brigade: whom we trust, and our client certificate (mutual TLS)."""

    ca_file: Path | None = Field(
        default=None, description="CA bundle the brigade's server is checked against; "
        "default: the system's."
    )  # fmt: skip
    cert_file: Path | None = Field(
        default=None, description="Our client certificate (PEM), for brigades that want mTLS."
    )
    key_file: Path | None = Field(default=None, description="Its private key (PEM).")


class BrigadeListen(_Model):
    """A dedicated HTTPS listener for brigades' systems that requires a client certificate."""

    listen: str = Field(description="host:port of the mutual-TLS listener (the same web app).")
    cert_file: Path = Field(description="Server certificate (PEM).")
    key_file: Path = Field(description="Server private key (PEM).")
    client_ca_file: Path = Field(
        description="CA that signed the brigades' client certificates; any other is refused."
    )


class BrigadeConfig(_Model):
    """Webhooks to fire brigades: retries, dead letters, timeouts, TLS (see cloud.brigade)."""

    backoff_base_s: float = Field(default=1.0, gt=0, description="First retry after this long.")
    backoff_max_s: float = Field(
        default=30.0, gt=0,
        description="Longest wait between retries (doubling up to it, jittered), so a brigade "
        "back from an outage is caught up within this long.",
    )  # fmt: skip
    max_attempts: int = Field(
        default=1000, ge=1, description="After this many failed attempts a message is dead."
    )
    max_age_s: float = Field(
        default=3600.0, gt=0, description="A message still undelivered this long after its "
        "step is dead (listed by `brigade dead`; `redeliver` sends it again)."
    )  # fmt: skip
    timeout_s: float = Field(default=5.0, gt=0, description="Per POST: connect and answer.")
    batch: int = Field(default=50, ge=1, description="Messages sent per pass, at most.")
    sender: str = Field(
        default="gridalarm@localhost",
        pattern=r"^[^\s,<&]+$",  # CAP 1.2: no spaces, commas, '<' or '&' (it is in references)
        description="CAP <sender>: stable for this installation (e.g. gridalarm@street.example).",
    )
    tls: WebhookTls = Field(default_factory=WebhookTls, description="TLS for every brigade.")
    tls_by_brigade: dict[str, WebhookTls] = Field(
        default_factory=dict, description="TLS for one brigade (by id), instead of `tls`."
    )
    listen: BrigadeListen | None = Field(
        default=None, description="Optional mutual-TLS HTTPS listener for brigades' systems."
    )


class ClusterConfig(_Model):
    """Scaled mode: several workers share the gateways through partition leases (PostgreSQL)."""

    partitions: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Gateways are hashed into this many partitions; fixed for a deployment "
        "(changing it moves gateways between sessions and checkpoints).",
    )
    lease_s: float = Field(
        default=10.0,
        ge=2.0,
        le=120.0,
        description="A partition lease lasts this long unless renewed (every third of it); a "
        "dead worker's partitions move after at most this.",
    )
    registry_refresh_s: float = Field(
        default=30.0, gt=0, description="Reread the registry this often for new gateways."
    )
    sweep_s: float = Field(
        default=5.0,
        gt=0,
        description="Every worker rereads the escalation timers and unfinished sends this often, "
        "so a dead worker's are taken over.",
    )


class CloudConfig(_Model):
    """A whole cloud worker."""

    mqtt: CloudMqtt = Field(default_factory=CloudMqtt, description="Ingest broker.")
    database_url: str = Field(
        default="sqlite:///cloud.sqlite",
        description="SQLAlchemy URL of alarms, registry and checkpoints (SQLite or PostgreSQL).",
    )
    rules_dir: Path | None = Field(
        default=None, description="Folder of rule YAML files; default: the shipped library."
    )
    devices_csv: Path | None = Field(
        default=None, description="Device registry CSV imported at start (device,gateway,type,...)."
    )
    sink: SqliteSinkConfig | InfluxSinkConfig | NoSinkConfig = Field(
        default_factory=lambda: SqliteSinkConfig(kind="sqlite"),
        discriminator="kind",
        description="Where readings go.",
    )
    dispatch: DispatchConfig | None = Field(
        default=None, description="Dispatch alarms to grid workers; null: store alarms only."
    )
    metrics_listen: str | None = Field(
        default="127.0.0.1:9108", description="host:port of the Prometheus endpoint; null: none."
    )
    health: HealthConfig = Field(
        default_factory=HealthConfig, description="Limits of /readyz (lag, outbox age)."
    )
    brigade: BrigadeConfig = Field(
        default_factory=BrigadeConfig, description="Webhooks to fire brigades (with dispatch)."
    )
    checkpoint_interval_s: float = Field(
        default=0.5, gt=0, le=5, description="Commit alarms + state and acknowledge this often."
    )
    checkpoint_max_messages: int = Field(
        default=5000, ge=1, description="...or after this many messages, whichever comes first."
    )
    cluster: ClusterConfig | None = Field(
        default=None,
        description="Run as one of several workers over PostgreSQL (partitions, leases); "
        "null: one worker owns every gateway (the SQLite default).",
    )

    @model_validator(mode="after")
    def _cluster_needs_postgresql(self) -> CloudConfig:
        if self.cluster is not None and not self.database_url.startswith("postgresql"):
            raise ValueError(
                "cluster: workers share their leases and checkpoints in PostgreSQL; "
                "set database_url to postgresql://... or remove cluster"
            )
        return self


def load_cloud_config(path: Path) -> CloudConfig:
    """Read and validate a cloud YAML file; paths are relative to the file's folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise unreadable(str(path), err) from err
    config = load_model(CloudConfig, text, str(path))
    return resolve(config, path.parent)


def resolve(config: CloudConfig, base: Path) -> CloudConfig:
    """Make relative paths absolute against *base* and take secrets from the environment."""
    update: dict[str, object] = {}
    if config.rules_dir is not None:
        update["rules_dir"] = base / config.rules_dir
    if config.devices_csv is not None:
        update["devices_csv"] = base / config.devices_csv
    if config.database_url.startswith("sqlite:///") and not config.database_url.startswith(
        "sqlite:////"
    ):
        update["database_url"] = (
            f"sqlite:///{base / config.database_url.removeprefix('sqlite:///')}"
        )
    settings = CloudSettings()
    sink = config.sink
    if isinstance(sink, SqliteSinkConfig):
        update["sink"] = sink.model_copy(update={"path": base / sink.path})
    elif isinstance(sink, InfluxSinkConfig) and sink.token is None and settings.influx_token:
        update["sink"] = sink.model_copy(update={"token": settings.influx_token})
    if config.dispatch is not None:
        d = config.dispatch
        update["dispatch"] = d.model_copy(
            update={
                "lifecycle": base / d.lifecycle if d.lifecycle else None,
                "registry_dir": base / d.registry_dir if d.registry_dir else None,
                "photo_dir": base / d.photo_dir,
            }
        )
    update["brigade"] = _resolve_brigade(config.brigade, base)
    mqtt = config.mqtt
    if mqtt.password is None and settings.mqtt_password is not None:
        update["mqtt"] = mqtt.model_copy(update={"password": settings.mqtt_password})
    return config.model_copy(update=update)


def _resolve_brigade(b: BrigadeConfig, base: Path) -> BrigadeConfig:
    def tls(t: WebhookTls) -> WebhookTls:
        return t.model_copy(update={k: base / v for k, v in t if v is not None})

    listen = b.listen
    if listen is not None:
        files = ("cert_file", "key_file", "client_ca_file")
        listen = listen.model_copy(update={k: base / getattr(listen, k) for k in files})
    return b.model_copy(
        update={
            "tls": tls(b.tls),
            "tls_by_brigade": {k: tls(v) for k, v in b.tls_by_brigade.items()},
            "listen": listen,
        }
    )
