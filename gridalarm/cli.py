"""`gridalarm`: one console script; each part brings its own sub-commands."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from edge.cli import app as edge_app
from firmware_sim.cli import app as sim_app

app = typer.Typer(
    name="gridalarm",
    help="Field alarms to the nearest grid worker: simulators, edge gateway, cloud (网格告警).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(sim_app, name="sim", help="Simulated field devices: run, list, trigger, fault.")
app.add_typer(edge_app, name="edge", help="The edge gateway and the installer's tools.")


@app.command()
def demo(
    broker: str | None = typer.Option(
        None, "--broker", envvar="GRIDALARM_BROKER",
        help="Use this broker (mqtt://HOST:PORT); it is only connected to, never started or stopped.",
    ),
    sim_config: Path | None = typer.Option(None, "--sim-config", help="Simulator config (default: the demo district's field)."),
    state_dir: Path = typer.Option(Path("var/demo"), "--state-dir", help="Where the demo keeps its outbox and status."),
    duration_s: float | None = typer.Option(None, "--duration", help="Stop after this many seconds (default: Ctrl-C)."),
    plain: bool = typer.Option(False, "--plain", help="One line per message instead of the live table."),
) -> None:
    """Run simulated devices, a gateway and a broker, and show the live traffic. Ctrl-C stops all."""
    from gridalarm.demo import run_demo  # the demo pulls in the most; load it only when asked

    logging.basicConfig(level=os.environ.get("GRIDALARM_LOG", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise typer.Exit(run_demo(broker, sim_config, state_dir, duration_s, plain))


def main() -> None:
    app()
