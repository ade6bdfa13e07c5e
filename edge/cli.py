"""`gridalarm edge`: the installer's commands, a thin shell over ``edge.installer``.

Exit codes: 0 ok, 1 device or bus problem, 2 usage or config error, 3 gateway not running or
broker unreachable. Read commands take ``--json`` for scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edge.config import DeviceConfig, read_gateway_config
from edge.errors import BusError, DeviceError, EdgeError
from edge.installer import views
from edge.installer.buses import adhoc_bus, parse_units
from edge.installer.commission import TEST_EVENT, wait_for_test_event
from edge.installer.configfile import append_device
from edge.installer.errors import (
    EXIT_DEVICE,
    EXIT_NOT_RUNNING,
    EXIT_USAGE,
    GatewayNotRunningError,
    InstallerError,
    UsageError,
)
from edge.installer.logs import configure_logging
from edge.installer.probe import device_of, probe_configured, read_once, watch
from edge.installer.runner import run_gateway_foreground
from edge.installer.scan import FoundUnit, scan_bus
from edge.installer.starter import write_starter
from edge.installer.statusfile import read_state
from edge.profile import ProfileSet
from edge.site import Site, load_site
from wire.yamlconf import ConfigError
from wire.yamlconf import validate as validate_model

app = typer.Typer(
    name="edge",
    help="Install, check and run a gridalarm edge gateway.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Gateway config file (YAML).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


class ScanProtocol(enum.StrEnum):
    RTU = "rtu"
    TCP = "tcp"


class ProbeProtocol(enum.StrEnum):
    RTU = "rtu"
    TCP = "tcp"
    ASCII = "ascii"


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)  # piped: lines are never wrapped or cut


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@contextlib.contextmanager
def _exit_codes() -> Iterator[None]:
    """Turn our errors into a message and the documented exit code."""
    try:
        yield
    except ConfigError as err:
        for issue in err.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except InstallerError as err:
        _err().print(f"[red]✗[/] {escape(str(err))}")
        raise typer.Exit(err.exit_code) from None
    except (DeviceError, BusError) as err:
        _err().print(f"[red]✗[/] {escape(str(err))}")
        raise typer.Exit(EXIT_DEVICE) from None
    except (EdgeError, OSError) as err:  # an unknown profile, a profile that misfits the bus,
        _err().print(f"[red]✗[/] {escape(str(err))}")  # a file we cannot write
        raise typer.Exit(EXIT_USAGE) from None


@app.command()
def run(
    config: ConfigOpt,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
    json_logs: Annotated[bool, typer.Option(help="One JSON object per log line.")] = False,
) -> None:
    """Run the gateway in the foreground until SIGTERM or Ctrl-C."""
    with _exit_codes():
        configure_logging(log_level, json_logs=json_logs)
        load_site(config)  # every issue up front: nothing starts half-configured
        run_gateway_foreground(config)


@app.command()
def init(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write.")] = Path("gateway.yaml"),
    gateway_id: Annotated[
        str, typer.Option(help="Gateway id (second level of every topic).")
    ] = "gw-0001",
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter config."""
    with _exit_codes():
        write_starter(out, gateway_id, force=force)
    _out().print(
        f"[green]✓[/] wrote {escape(str(out))}: edit the buses and devices, then "
        f"[bold]gridalarm edge validate --config {escape(str(out))}[/]"
    )


@app.command("validate")
def validate_config(config: ConfigOpt, as_json: JsonOpt = False) -> None:
    """Check a config and the profiles it names; print every issue with file:line."""
    try:
        site = load_site(config)
    except ConfigError as err:
        if as_json:
            _echo_json({"ok": False, "issues": [dataclasses.asdict(i) for i in err.issues]})
        else:
            for issue in err.issues:
                typer.echo(str(issue))
            typer.echo(f"{len(err.issues)} problem(s) in {config}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    buses, devices = len(site.config.buses), len(site.config.devices)
    if as_json:
        _echo_json({"ok": True, "buses": buses, "devices": devices})
    else:
        typer.echo(f"OK: {buses} buses, {devices} devices")


@app.command()
def profiles(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Add the config's profile_dirs.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the known device profiles and their measurements."""
    with _exit_codes():
        dirs = read_gateway_config(config)[0].profile_dirs if config else []
        known = ProfileSet.load(dirs)
    if as_json:
        _echo_json(views.profiles_json(known))
    else:
        _out().print(views.profiles_table(known))


@app.command()
def scan(  # noqa: PLR0917 - Typer passes options by name
    port: Annotated[str | None, typer.Option(help="Serial port, or TCP port with --host.")] = None,
    baud: Annotated[int, typer.Option(min=1, help="Serial baud rate.")] = 9600,
    units: Annotated[str, typer.Option(help="Unit ids: '1-247', '5', '1,3,10-12'.")] = "1-247",
    protocol: Annotated[ScanProtocol, typer.Option(help="rtu (serial) or tcp.")] = ScanProtocol.RTU,
    host: Annotated[str | None, typer.Option(help="Modbus TCP host.")] = None,
    timeout: Annotated[float, typer.Option(min=0.01, help="Seconds to wait per unit.")] = 0.1,
    as_json: JsonOpt = False,
) -> None:
    """Find the units that answer on a bus and guess their profiles."""
    with _exit_codes():
        bus = adhoc_bus(protocol.value, port, host, baud)
        unit_ids = parse_units(units)
        known = ProfileSet.load()
        where = bus.port if bus.kind == "serial" else f"{bus.host}:{bus.port}"
        with _progress(as_json) as progress:
            task = progress.add_task(f"scanning {where}", total=len(unit_ids))
            found: list[int] = []

            def on_unit(unit: int, result: FoundUnit | None) -> None:
                found.extend([unit] if result else [])
                progress.update(
                    task, advance=1, description=f"scanning {where}: {len(found)} found"
                )

            result = asyncio.run(scan_bus(bus, unit_ids, known, timeout_s=timeout, on_unit=on_unit))
    if as_json:
        _echo_json(result.as_dict())
    else:
        _out().print(views.scan_table(result))
    if not result.found:
        _err().print(
            "[yellow]no unit answered[/]: check wiring (A/B swapped?), termination, "
            "baud rate and parity, and that the devices have power"
        )
        raise typer.Exit(EXIT_DEVICE)


def _progress(disable: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_err(),
        transient=True,
        disable=disable,
    )


@app.command()
def probe(  # noqa: PLR0917 - Typer passes options by name
    device: Annotated[str | None, typer.Argument(help="Device id in --config.")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Gateway config.")] = None,
    port: Annotated[str | None, typer.Option(help="Serial port, or TCP port with --host.")] = None,
    host: Annotated[str | None, typer.Option(help="Modbus TCP host.")] = None,
    protocol: Annotated[ProbeProtocol, typer.Option(help="rtu, tcp or ascii.")] = ProbeProtocol.RTU,
    baud: Annotated[int, typer.Option(min=1, help="Serial baud rate.")] = 9600,
    unit: Annotated[int | None, typer.Option(min=1, max=247, help="Unit id.")] = None,
    profile: Annotated[str | None, typer.Option(help="Profile name (see `profiles`).")] = None,
    timeout: Annotated[float, typer.Option(min=0.01, help="Seconds to wait for a reply.")] = 0.5,
    as_json: JsonOpt = False,
) -> None:
    """Read one device once: `--config FILE DEVICE`, or `--port/--host --unit N --profile P`."""
    with _exit_codes():
        if config is not None and device is not None:
            reading = asyncio.run(probe_configured(load_site(config), device))
        elif config is None and device is None and unit is not None and profile is not None:
            bus = adhoc_bus(protocol.value, port, host, baud)
            reading = asyncio.run(
                read_once(bus, unit, ProfileSet.load().get(profile), timeout_s=timeout)
            )
        else:
            raise UsageError(
                "give --config FILE DEVICE, or --port/--host with --unit N --profile NAME"
            )
    if as_json:
        _echo_json(reading.as_dict())
    else:
        _out().print(views.reading_table(reading))


@app.command("add-device")
def add_device(
    *,
    config: ConfigOpt,
    device_id: Annotated[str, typer.Option("--id", help="New device id, e.g. smk-0042.")],
    bus: Annotated[str, typer.Option(help="Id of the bus it hangs on.")],
    unit: Annotated[int, typer.Option(help="Modbus unit id / ASCII address, 1-247.")],
    profile: Annotated[str, typer.Option(help="Profile name (see `profiles`).")],
    poll_interval_s: Annotated[float | None, typer.Option(help="Seconds between polls.")] = None,
    timeout_s: Annotated[float | None, typer.Option(help="Seconds to wait for a reply.")] = None,
    retries: Annotated[int | None, typer.Option(help="Extra attempts after a failure.")] = None,
) -> None:
    """Append a device to the config (comments kept); the file is left unchanged on any error."""
    fields: dict[str, Any] = {
        "id": device_id,
        "bus": bus,
        "unit": unit,
        "profile": profile,
        "poll_interval_s": poll_interval_s,
        "timeout_s": timeout_s,
        "retries": retries,
    }
    with _exit_codes():
        new = validate_model(
            DeviceConfig, {k: v for k, v in fields.items() if v is not None}, "add-device"
        )
        try:
            site = append_device(config, new)
        except ConfigError:
            _err().print(f"[red]✗[/] {escape(str(config))} left unchanged:")
            raise
    _out().print(
        f"[green]✓[/] added {new.id} ({new.profile}, bus {new.bus}, unit {new.unit}); "
        f"{len(site.config.devices)} devices. A running gateway picks it up on restart "
        "or reload-config."
    )


@app.command("watch")
def watch_device(
    config: ConfigOpt,
    device: Annotated[str, typer.Argument(help="Device id in the config.")],
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between readings.")] = 1.0,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after N readings.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per reading.")] = False,
) -> None:
    """Show a device's values live (read over its bus, or from the running gateway)."""
    with _exit_codes():
        site = load_site(config)
        device_of(site, device)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_watch(site, device, interval, count, as_json))


async def _watch(
    site: Site, device: str, interval: float, count: int | None, as_json: bool
) -> None:
    readings = watch(site, device, interval_s=interval, count=count)
    if as_json:
        async for reading in readings:
            typer.echo(json.dumps(reading.as_dict(), ensure_ascii=False))
        return
    with Live(console=_out(), auto_refresh=False) as live:
        async for reading in readings:
            live.update(views.reading_table(reading), refresh=True)


@app.command()
def status(config: ConfigOpt, as_json: JsonOpt = False) -> None:
    """Show what the running gateway reports: uplink, outbox, buses, devices."""
    with _exit_codes():
        state_dir = read_gateway_config(config)[0].state_dir
        try:
            state = read_state(state_dir)
        except GatewayNotRunningError as err:
            if as_json:
                _echo_json({"running": False, "error": str(err)})
            raise
    if as_json:
        _echo_json({"running": state.running, "age_s": round(state.age_s, 3), "status": state.data})
    elif state.running:
        _out().print(views.status_view(state))
    if not state.running:
        _err().print(
            f"[red]✗[/] gateway not running: {escape(str(state.path))} was last written "
            f"{state.age_s:.0f} s ago. Start it with [bold]gridalarm edge run --config {config}[/]"
        )
        raise typer.Exit(EXIT_NOT_RUNNING)


@app.command()
def commission(
    config: ConfigOpt,
    device: Annotated[str, typer.Argument(help="Device id in the config.")],
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the test event.")
    ] = 120,
    broker: Annotated[str | None, typer.Option(help="Broker URL (default: the config's).")] = None,
) -> None:
    """Wait for DEVICE's test button event to reach the broker (end-to-end check)."""
    with _exit_codes():
        site = load_site(config)
        dev = device_of(site, device)
        if TEST_EVENT not in {e.name for e in site.profiles.get(dev.profile).event_rules}:
            raise UsageError(
                f"profile {dev.profile!r} has no {TEST_EVENT} event to commission with"
            )
        try:
            read_state(site.config.state_dir)
        except GatewayNotRunningError as err:
            _err().print(f"[yellow]warning[/]: {escape(str(err))}")
        try:
            event = wait_for_test_event(
                site.config.mqtt,
                site.config.gateway_id,
                device,
                timeout_s=timeout,
                broker_url=broker,
                on_ready=lambda topic: _out().print(
                    f"Press the test button on [bold]{escape(device)}[/] now "
                    f"(waiting up to {timeout:g} s for {escape(topic)})"
                ),
            )
        except InstallerError as err:
            if err.exit_code == EXIT_DEVICE:
                _err().print(
                    f"[red]✗[/] {escape(str(err))}\n  Is the gateway running? "
                    f"[bold]gridalarm edge status --config {escape(str(config))}[/]\n"
                    f"  Does it read the device? [bold]gridalarm edge watch --config "
                    f"{escape(str(config))} {escape(device)}[/]"
                )
                raise typer.Exit(EXIT_DEVICE) from None
            raise
    _out().print(
        f"[green]✓[/] test event from {escape(device)} reached the broker "
        f"(seq {event.seq}, after {event.elapsed_s:.1f} s)"
    )


if __name__ == "__main__":
    app()
