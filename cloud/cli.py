"""`gridalarm cloud …` and `gridalarm rules …`: thin shells over the cloud library."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cloud.config import CloudConfig, load_cloud_config
from cloud.database import open_database
from cloud.ingest.devices import upsert_devices
from cloud.lifecycle.rule_alarms import list_alarms
from cloud.registry import create_registry_tables, import_district, write_demo_district
from rules.devices_csv import read_devices_csv
from rules.folder import load_rules
from wire.yamlconf import ConfigError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="The cloud worker and its data.")
rules_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Rule sets.")
console = Console()

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Cloud config file (YAML).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _config(path: Path) -> CloudConfig:
    try:
        return load_cloud_config(path)
    except ConfigError as err:
        for issue in err.issues:
            console.print(str(issue), markup=False, highlight=False)
        raise typer.Exit(2) from None


@app.command()
def run(
    config: ConfigOpt,
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR.")
    ] = "INFO",
) -> None:
    """Run a cloud worker until SIGTERM or Ctrl-C."""
    from cloud.worker import run_cloud  # noqa: PLC0415 - the worker's imports only when running

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    cfg = _config(config)
    try:
        load_rules(cfg.rules_dir)
    except ConfigError as err:
        for issue in err.issues:
            console.print(str(issue), markup=False, highlight=False)
        raise typer.Exit(2) from None

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        await run_cloud(cfg)

    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
        asyncio.run(main())


@app.command()
def alarms(
    config: ConfigOpt,
    open_only: Annotated[bool, typer.Option("--open", help="Only open alarms.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List alarms, newest first."""
    cfg = _config(config)
    rows = list_alarms(open_database(cfg.database_url), open_only=open_only)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    table = Table("raised", "state", "severity", "device", "rule", "title", "confirmed")
    for r in rows:
        table.add_row(
            _when(r["raised_ts"]),
            r["state"],
            r["severity"],
            r["device"] or r["gateway"],
            r["rule_id"],
            f"{r['title_zh']} / {r['title_en']}",
            "✓" if r["confirmed"] else "",
        )
    console.print(table)


@app.command("import-devices")
def import_devices(
    config: ConfigOpt, csv_file: Annotated[Path, typer.Argument(help="Device CSV.")]
) -> None:
    """Import or update devices from a CSV (device,gateway,type,grid,building,community,...)."""
    cfg = _config(config)
    try:
        devices = read_devices_csv(csv_file.read_text(encoding="utf-8"), str(csv_file))
    except ConfigError as err:
        for issue in err.issues:
            console.print(str(issue), markup=False, highlight=False)
        raise typer.Exit(2) from None
    count = upsert_devices(open_database(cfg.database_url), devices)
    console.print(f"imported {count} devices")


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
        console.print(f"{name}: {count}")


@app.command("demo-district")
def demo_district(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the files into.")],
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same district.")] = 1,
) -> None:
    """Write the fictional demo district (9 communities, 150 grids, ~1,500 devices, ~200 people)."""
    for path in write_demo_district(out, seed):
        console.print(str(path), markup=False, highlight=False)


def _print_issues(err: ConfigError) -> None:
    for issue in err.issues:
        console.print(str(issue), markup=False, highlight=False)


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
        for issue in err.issues:
            console.print(str(issue), markup=False, highlight=False)
        raise typer.Exit(2) from None
    lines = ruleset.describe()
    if as_json:
        typer.echo(json.dumps({"ok": True, "rules": lines}, ensure_ascii=False))
        return
    for line in lines:
        console.print(f"• {line}", markup=False, highlight=False)
    console.print(f"OK: {len(lines)} rules")


def _when(ts: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts))) if ts else ""
