"""``gridalarm sim``: run simulated field devices and poke them while they run.

A thin shell over :class:`SimulatorSet` and the control server. Exit codes: 0 ok, 2 bad
input (unknown device, event or fault; bad config), 3 no running simulator.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from firmware_sim.catalog import TYPES
from firmware_sim.control import ControlServer
from firmware_sim.control_client import NoSimulatorError, call
from firmware_sim.device import Fault
from firmware_sim.errors import ScenarioError
from firmware_sim.simset import SerialLine, SimulatorSet
from firmware_sim.statefile import remove_state, state_path, write_state

DEMO_CONFIG = Path(__file__).parent / "scenarios" / "demo.yaml"
EXIT_BAD_INPUT = 2
EXIT_NO_SIMULATOR = 3
EVENTS_HELP = "  ".join(f"{name}: {', '.join(t.events)}." for name, t in TYPES.items())

app = typer.Typer(help="Simulated RS485 field devices (firmware_sim).", no_args_is_help=True)
console = Console(soft_wrap=True)  # piped: lines are never wrapped or cut
errors = Console(stderr=True, soft_wrap=True)


@app.command()
def run(
    config: Annotated[
        Path | None, typer.Option("--config", help="Sim config YAML (default: the demo field).")
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="Scenario YAML played on the config.")
    ] = None,
    speed: Annotated[float, typer.Option("--speed", min=0.01, help="Simulated s per s.")] = 1.0,
) -> None:
    """Serve the devices until Ctrl-C or SIGTERM; print the endpoints."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        sims = SimulatorSet.from_config(config or DEMO_CONFIG, scenario=scenario, speed=speed)
    except ScenarioError as err:
        errors.print(f"[red]invalid config[/red]\n{err}", markup=True, highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    asyncio.run(_serve(sims, state_path()))


async def _serve(sims: SimulatorSet, state_file: Path) -> None:
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main.cancel)
    control = ControlServer(sims)
    try:
        async with sims:
            address = await control.start()
            write_state(state_file, address, sims)
            _print_endpoints(sims, address)
            await asyncio.Event().wait()  # until a signal cancels us
    except asyncio.CancelledError:
        console.print("simulator stopped")
    finally:
        remove_state(state_file)
        await control.aclose()


def _print_endpoints(sims: SimulatorSet, control: str) -> None:
    table = Table("bus", "transport", "address", "devices")
    for e in sims.endpoints():
        ids = ", ".join(d.id for d in sims.devices() if d.bus == e.bus)
        table.add_row(e.bus, e.transport, e.address, ids)
    console.print(table)
    console.print(f"control: {control}  state: {state_path()}", highlight=False)


@app.command("list")
def list_devices(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """The running simulator's devices: id, type, transport, address, serial line settings."""
    devices = _call({"op": "list"})["devices"]
    if as_json:
        typer.echo(json.dumps(devices, indent=2))
        return
    table = Table("id", "type", "transport", "bus", "unit", "address", "line")
    for d in devices:
        settings = str(SerialLine(**d["serial"])) if d["serial"] else "—"
        table.add_row(
            d["id"], d["type"], d["transport"], d["bus"], str(d["unit"]), d["address"], settings
        )
    console.print(table)


@app.command(
    short_help="Apply an event to a running device.",
    help=f"Apply an event to a running device.  Events by type: {EVENTS_HELP}",
)
def trigger(
    device: Annotated[str, typer.Argument(help="Device id, e.g. smk-0001.")],
    event: Annotated[str, typer.Argument(help="Event name (see above).")],
) -> None:
    """Apply an event to a running device."""
    _call({"op": "trigger", "device": device, "event": event})
    console.print(f"{device}: {event}", highlight=False)


@app.command()
def fault(
    device: Annotated[str, typer.Argument(help="Device id, e.g. fl-0001.")],
    kind: Annotated[Fault, typer.Argument(help="Fault kind; `none` heals.")],
) -> None:
    """Inject a fault into a running device."""
    _call({"op": "fault", "device": device, "kind": kind.value})
    console.print(f"{device}: fault {kind.value}", highlight=False)


@app.command()
def truth(device: Annotated[str, typer.Argument(help="Device id.")]) -> None:
    """Print a running device's current values (engineering units) as JSON."""
    typer.echo(json.dumps(_call({"op": "truth", "device": device})["truth"], indent=2))


def _call(request: dict[str, Any]) -> dict[str, Any]:
    try:
        reply = call(state_path(), request)
    except NoSimulatorError as err:
        errors.print(str(err), highlight=False, markup=False)
        raise typer.Exit(EXIT_NO_SIMULATOR) from err
    if not reply.get("ok"):
        errors.print(str(reply.get("message", reply)), highlight=False, markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    return reply
