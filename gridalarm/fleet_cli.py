"""``gridalarm sim fleet`` (a recording, or with ``--live`` real traffic) and ``sim fleet-check``.

Thin shells: the recording is ``replay.cli.fleet_cmd``'s, the live run ``gridalarm.fleetload``,
the check ``gridalarm.fleetcheck``. Exit codes: 0 ok, 1 the check failed or the run could not
finish sending, 2 bad usage.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer

from cloud.database import connect
from edge.config import broker_address
from gridalarm.fleetcheck import check_fleet, report_lines
from gridalarm.fleetload import (
    LoadOptions,
    district,
    plan_alarms,
    run_load,
    write_district,
    write_incidents,
)
from replay.cli import (
    FleetDevices,
    FleetFaults,
    FleetFires,
    FleetHeartbeat,
    FleetHours,
    FleetProgress,
    FleetSeed,
    FleetStart,
)
from replay.cli import fleet_cmd as recording_cmd
from replay.fleet import DEFAULT_START


def fleet_cmd(  # noqa: PLR0917 - each parameter is a CLI option
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Recording to write (.jsonl.gz); not with --live.")
    ] = None,
    devices: FleetDevices = 10_000,
    hours: FleetHours = 24.0,
    seed: FleetSeed = 1,
    start: FleetStart = DEFAULT_START,
    heartbeat_s: FleetHeartbeat = 600.0,
    fires: FleetFires = 6,
    faults: FleetFaults = 20,
    progress: FleetProgress = True,
    live: Annotated[
        bool, typer.Option("--live", help="Publish real traffic to --broker instead.")
    ] = False,
    gateways: Annotated[
        int, typer.Option("--gateways", min=1, help="Live: how many gateways share the devices.")
    ] = 200,
    brokers: Annotated[
        list[str] | None,
        typer.Option("--broker", help="Live: mqtt://HOST:PORT; repeat for each node of a cluster."),
    ] = None,
    rate: Annotated[
        float, typer.Option("--rate", min=0.01, help="Live: messages per second, all gateways.")
    ] = 1000.0,
    duration_s: Annotated[
        float,
        typer.Option(
            "--duration", min=0, help="Live: seconds of polling (0: write the files and stop)."
        ),
    ] = 60.0,
    alarms: Annotated[
        int, typer.Option("--alarms", min=0, help="Live: alarm incidents over the run.")
    ] = 0,
    seq_file: Annotated[
        Path, typer.Option("--seq-file", help="Live: each gateway's last seq (JSON), continued.")
    ] = Path("fleet.json"),
    devices_csv: Annotated[
        Path | None,
        typer.Option("--devices-csv", help="Live: write the district's devices CSV here."),
    ] = None,
    incidents_file: Annotated[
        Path | None,
        typer.Option("--incidents", help="Live: write the scripted incidents (JSON) here."),
    ] = None,
) -> None:
    """A synthetic district: a recording (--out), or live wire traffic on brokers (--live)."""
    if not live:
        if out_file is None:
            raise typer.BadParameter("give --out (a recording), or --live", param_hint="--out")
        recording_cmd(out_file, devices, hours, seed, start, heartbeat_s, fires, faults, progress)
        return
    if gateways > devices:
        raise typer.BadParameter("more gateways than devices", param_hint="--gateways")
    opts = LoadOptions(
        _brokers(brokers or []), seq_file, devices, gateways, rate, duration_s, alarms,
        heartbeat_s, seed,
    )  # fmt: skip
    raise typer.Exit(_live(opts, devices_csv, incidents_file))


def _brokers(urls: list[str]) -> list[tuple[str, int]]:
    if not urls:
        raise typer.BadParameter("--live needs at least one", param_hint="--broker")
    out = []
    for url in urls:
        try:
            host, port, tls = broker_address(url)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--broker") from None
        if tls:
            raise typer.BadParameter(f"{url}: the fleet speaks plain MQTT", param_hint="--broker")
        out.append((host, port))
    return out


def _live(opts: LoadOptions, devices_csv: Path | None, incidents_file: Path | None) -> int:
    devices = district(opts.devices, opts.gateways, opts.heartbeat_s)
    start = time.time()
    overrides, incidents = plan_alarms(devices, opts.alarms, start, opts)
    if devices_csv is not None:
        write_district(devices, devices_csv)
    if incidents_file is not None:
        write_incidents(incidents, devices, incidents_file)
    kinds = dict(Counter(i.kind for i in incidents))
    typer.echo(
        f"fleet: {len(devices)} devices on {opts.gateways} gateways, a poll every "
        f"{opts.poll_s:.2f} s for {opts.duration_s:g} s; incidents {kinds}",
        err=True,
    )
    if opts.duration_s == 0:
        return 0
    result = asyncio.run(run_load(opts, devices, overrides, start))
    typer.echo(
        f"published {result.messages} messages ({result.messages / opts.duration_s:.0f}/s over "
        f"{opts.duration_s:g} s, done after {result.elapsed_s:.1f} s); "
        f"last seqs in {opts.seq_file}"
    )
    if not result.finished:
        typer.echo("fleet: the gateways still held messages when the run had to end", err=True)
        return 1
    return 0


def fleet_check_cmd(
    seq_file: Annotated[
        Path, typer.Option("--seq-file", help="The fleet's last seqs (from sim fleet --live).")
    ],
    database: Annotated[
        str,
        typer.Option(
            "--database", help="The cloud's database: a URL (postgresql+psycopg://…) or a file."
        ),
    ],
) -> None:
    """Check the cloud's checkpoints saw every seq each fleet gateway published, exactly once;
    exit 1 if not."""
    try:
        published = {str(k): int(v) for k, v in json.loads(seq_file.read_text()).items()}
    except (OSError, ValueError, AttributeError) as err:
        raise typer.BadParameter(f"{seq_file}: {err}", param_hint="--seq-file") from None
    db = connect(database if "://" in database else f"sqlite:///{Path(database).resolve()}")
    try:
        result = check_fleet(db, published)
    except sa.exc.SQLAlchemyError as err:
        typer.echo(f"fleet-check: {database}: {err}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    for line in report_lines(result):
        typer.echo(line)
    raise typer.Exit(0 if result.ok else 1)
