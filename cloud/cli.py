"""`gridalarm cloud …` and `gridalarm rules …`: thin shells over the cloud library."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from cloud.brigade.cli import app as brigade_app
from cloud.config import CloudConfig, load_cloud_config
from cloud.console.cli import app as user_app
from cloud.database import open_database
from cloud.ingest.devices import upsert_devices
from cloud.lifecycle.board import BoardRow, list_board
from cloud.registry import create_registry_tables, import_district, write_demo_district
from cloud.settings import CloudSettings
from rules.devices_csv import read_devices_csv
from rules.folder import load_rules
from wire.yamlconf import ConfigError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="The cloud worker and its data.")
rules_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Rule sets.")
app.add_typer(brigade_app, name="brigade", help="Fire brigades and their API keys.")
app.add_typer(user_app, name="user", help="Console staff accounts (add, passwd, disable).")

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Cloud config file (YAML).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

# `gridalarm demo` keeps its state here (relative to where it runs) and its cloud database in
# this file of it; `cloud alarms` without --config reads it.
DEMO_STATE_DIR = Path("var/demo")
DEMO_DATABASE = "cloud.sqlite"
PIPED_WIDTH = 10_000  # a table piped to a file or program keeps its natural width


def _out() -> Console:
    """stdout: lines never wrapped; on a terminal tables fit it, piped they are never cut."""
    console = Console(soft_wrap=True, highlight=False)
    if not console.is_terminal:
        console.width = PIPED_WIDTH
    return console


def _print_issues(err: ConfigError) -> None:
    """One line per problem (file:line: field: message) on stderr, never wrapped."""
    for issue in err.issues:
        typer.echo(str(issue), err=True)


def _config(path: Path) -> CloudConfig:
    try:
        return load_cloud_config(path)
    except ConfigError as err:
        _print_issues(err)
        raise typer.Exit(2) from None


@app.command()
def run(
    config: ConfigOpt,
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR.")
    ] = "INFO",
    worker_id: Annotated[
        str | None,
        typer.Option(
            "--worker-id",
            help="This worker's name among several (scaled mode; or GRIDALARM_WORKER_ID).",
        ),
    ] = None,
    metrics_listen: Annotated[
        str | None,
        typer.Option("--metrics-listen", help="host:port of /metrics, instead of the config's."),
    ] = None,
    http_listen: Annotated[
        str | None,
        typer.Option("--http-listen", help="host:port of the web app, instead of the config's."),
    ] = None,
) -> None:
    """Run a cloud worker until SIGTERM or Ctrl-C.

    Several workers of one deployment (``cluster:`` in the config) each take a --worker-id
    and their own --metrics-listen / --http-listen when they share a machine.

    Exit 0 after a stop signal; 2 when a config, setting or port is unusable (every problem
    listed, nothing opened); 1 when a part of the worker failed for good (one-line reason)."""
    from cloud.worker import serve  # noqa: PLC0415 - worker imports only to run

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    cfg = _config(config)
    if metrics_listen is not None:
        cfg = cfg.model_copy(update={"metrics_listen": metrics_listen})
    if http_listen is not None and cfg.dispatch is not None:
        dispatch = cfg.dispatch.model_copy(update={"http_listen": http_listen})
        cfg = cfg.model_copy(update={"dispatch": dispatch})
    settings = CloudSettings()
    if worker_id is not None:
        settings = settings.model_copy(update={"worker_id": worker_id})
    code, reason = serve(cfg, settings)
    if reason:
        typer.echo(reason, err=True)
    raise typer.Exit(code)


@app.command()
def alarms(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help=f"Cloud config file (YAML); default: the demo's database "
            f"({DEMO_STATE_DIR / DEMO_DATABASE}) if it exists.",
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option("--database", help="Database URL or SQLite file, instead of --config."),
    ] = None,
    open_only: Annotated[
        bool, typer.Option("--open", help="Only alarms not yet resolved or cleared.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 200,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='{"database": URL, "alarms": [...]}; each alarm\'s fields are listed in '
            "cloud/lifecycle/board.py.",
        ),
    ] = False,
) -> None:
    """List alarms, newest first, with their lifecycle state, who holds them and since when."""
    url = _database_url(config, database)
    # open_database: a database an older release made gains the columns read here
    rows = list_board(open_database(url), open_only=open_only, limit=limit)
    shown = sa.make_url(url).render_as_string(hide_password=True)
    if as_json:
        body = {"database": shown, "alarms": [r.as_json() for r in rows]}
        typer.echo(json.dumps(body, ensure_ascii=False, indent=1))
        return
    table = Table(
        "raised 发生", "state 状态", "since 起", "who 处置人", "severity 级别", "device 设备",
        "rule 规则", "title 标题",
    )  # fmt: skip
    for r in rows:
        table.add_row(
            _when(r.raised_ts), _state(r), _when(r.since), r.holder or "", r.severity,
            r.device or r.gateway, r.rule_id, f"{r.title_zh} / {r.title_en}",
        )  # fmt: skip
    _out().print(table)


@app.command()
def partitions(
    config: ConfigOpt,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='{"workers": [[id, seconds since seen]], "partitions": [...]}.'
        ),
    ] = False,
) -> None:
    """Scaled mode: who owns each partition, its epoch, handovers, gateways and how fresh its
    last checkpoint is (a partition with traffic checkpoints every checkpoint_interval_s)."""
    from cloud.cluster.status import cluster_status  # noqa: PLC0415 - PostgreSQL mode only

    cfg = _config(config)
    if cfg.cluster is None:
        typer.echo(
            "此配置不是集群模式 / this config has no `cluster:` section: one worker owns every "
            "gateway",
            err=True,
        )
        raise typer.Exit(2)
    db = sa.create_engine(cfg.database_url)
    try:
        status = cluster_status(db, cfg.cluster.lease_s)
    except sa.exc.ProgrammingError:
        typer.echo("no worker has started on this database yet (no lease table)", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    if as_json:
        body = {"workers": status.workers, "partitions": [p.as_json() for p in status.partitions]}
        typer.echo(json.dumps(body, ensure_ascii=False, indent=1))
        return
    live = ", ".join(f"{w} ({age:.0f} s ago)" for w, age in status.workers) or "none"
    typer.echo(f"live workers 在线工作进程: {live}")
    table = Table(
        "partition 分区", "owner 持有者", "epoch", "lease left 租约剩余", "handovers 交接",
        "gateways 网关", "devices 设备", "processed 已处理", "last checkpoint 检查点",
    )  # fmt: skip
    for p in status.partitions:
        table.add_row(
            str(p.partition), p.owner or "— free 空闲", str(p.epoch),
            "" if p.expires_in_s is None else f"{p.expires_in_s:.1f} s", str(p.handovers),
            str(p.gateways), str(p.devices), str(p.processed),
            "never" if p.checkpoint_age_s is None else f"{p.checkpoint_age_s:.1f} s ago",
        )  # fmt: skip
    _out().print(table)


STATE_ZH = {
    "raised": "已发生", "notified": "已通知", "escalated": "已升级", "acknowledged": "已接单",
    "on_site": "已到场", "resolved": "已完结", "cleared": "已消除",
}  # fmt: skip
OUTCOME_ZH = {"real": "真实", "false_alarm": "误报", "device_fault": "设备故障", "test": "测试"}


def _state(r: BoardRow) -> str:
    text = f"{r.state} {STATE_ZH.get(r.state, '')}".rstrip()
    if r.outcome:
        text += f" ({r.outcome} {OUTCOME_ZH.get(r.outcome, '')})".replace(" )", ")")
    return text + (" ⚠ overdue 超时" if r.overdue else "")


def _database_url(config: Path | None, database: str | None) -> str:
    """The database to read, from --config, --database or the demo's state; said on stderr."""
    if config is not None and database is not None:
        typer.echo(
            "--config 与 --database 只能选一个 / give --config or --database, not both", err=True
        )
        raise typer.Exit(2)
    if config is not None:
        url = _config(config).database_url
    elif database is not None:
        url = database if "://" in database else f"sqlite:///{Path(database).resolve()}"
    else:
        demo = DEMO_STATE_DIR / DEMO_DATABASE
        if not demo.is_file():
            typer.echo(
                f"没有 --config，也没有演示数据库 {demo} / no --config given and no demo "
                f"database at {demo} (run `gridalarm demo` here, or pass --config)",
                err=True,
            )
            raise typer.Exit(2)
        url = f"sqlite:///{demo.resolve()}"
    _check_sqlite_file(url)
    shown = sa.make_url(url).render_as_string(hide_password=True)
    typer.echo(f"读取数据库 reading {shown}", err=True)
    return url


def _check_sqlite_file(url: str) -> None:
    """A read never creates a database: a missing SQLite file is an error, not an empty list."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        typer.echo(f"{url}: 不是数据库地址 not a database URL", err=True)
        raise typer.Exit(2) from None
    path = parsed.database
    sqlite_file = parsed.get_backend_name() == "sqlite" and path and path != ":memory:"
    if sqlite_file and not Path(str(path)).is_file():
        typer.echo(f"{path}: 无法打开 cannot open: no such file", err=True)
        raise typer.Exit(2)


@app.command("import-devices")
def import_devices(
    config: ConfigOpt, csv_file: Annotated[Path, typer.Argument(help="Device CSV.")]
) -> None:
    """Import or update devices from a CSV (device,gateway,type,grid,building,community,...)."""
    cfg = _config(config)
    try:
        devices = read_devices_csv(csv_file.read_text(encoding="utf-8"), str(csv_file))
    except ConfigError as err:
        _print_issues(err)
        raise typer.Exit(2) from None
    count = upsert_devices(open_database(cfg.database_url), devices)
    typer.echo(f"imported {count} devices")


@app.command("import")
def import_dir(
    config: ConfigOpt,
    directory: Annotated[Path, typer.Argument(help="Folder of registry files (see README).")],
) -> None:
    """Import a district: communities, grids (GeoJSON), devices, locations, workers, shifts."""
    cfg = _config(config)
    db = open_database(cfg.database_url)
    create_registry_tables(db)
    try:
        counts = import_district(db, directory)
    except ConfigError as err:
        _print_issues(err)
        raise typer.Exit(2) from None
    for name, count in counts.items():
        typer.echo(f"{name}: {count}")


@app.command("demo-district")
def demo_district(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the files into.")],
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same district.")] = 1,
) -> None:
    """Write the fictional demo district (9 communities, 150 grids, ~1,500 devices, ~200 people)."""
    for path in write_demo_district(out, seed):
        typer.echo(str(path))


@rules_app.command("check")
def check(
    directory: Annotated[
        Path | None, typer.Argument(help="Folder of rule YAML; default: the library.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate a rule set and list what each rule does."""
    try:
        ruleset = load_rules(directory)
    except ConfigError as err:
        _print_issues(err)
        raise typer.Exit(2) from None
    lines = ruleset.describe()
    if as_json:
        typer.echo(json.dumps({"ok": True, "rules": lines}, ensure_ascii=False))
        return
    for line in lines:
        typer.echo(f"• {line}")
    typer.echo(f"OK: {len(lines)} rules")


def _when(ts: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts))) if ts else ""
