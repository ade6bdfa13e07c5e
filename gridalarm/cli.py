"""`gridalarm`: one console script; each part brings its own sub-commands."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from cloud.cli import DEMO_STATE_DIR, rules_app
from cloud.cli import app as cloud_app
from edge.cli import app as edge_app
from firmware_sim.cli import app as sim_app
from gridalarm.fleet_cli import fleet_check_cmd, fleet_cmd
from replay.cli import record_cmd, replay_cmd

app = typer.Typer(
    name="gridalarm",
    help="Field alarms to the nearest grid worker: simulators, edge gateway, cloud (网格告警).",
    no_args_is_help=True,
    add_completion=False,
    # Usage errors the plain way ("Error: …" on one line): typer's boxed form re-wraps them to
    # the terminal's width, 80 columns when piped, which splits long paths and values.
    rich_markup_mode=None,
)
app.add_typer(sim_app, name="sim", help="Simulated field devices: run, list, trigger, fault.")
app.add_typer(edge_app, name="edge", help="The edge gateway and the installer's tools.")
app.add_typer(cloud_app, name="cloud", help="The cloud worker: ingest, rules, alarms.")
app.add_typer(rules_app, name="rules", help="Rule sets: check what they do.")
app.command("record", help="Record every wire message from a broker to a file.")(record_cmd)
app.command("replay", help="Replay a recording through a rule set, offline; compare two.")(
    replay_cmd
)
sim_app.command(
    "fleet", help="A synthetic district: a recording, or live traffic on brokers (--live)."
)(fleet_cmd)
sim_app.command(
    "fleet-check", help="Did the cloud's checkpoints see every seq the live fleet published?"
)(fleet_check_cmd)


@app.command()
def demo(  # noqa: PLR0917 - each parameter is a CLI option
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            envvar="GRIDALARM_BROKER",
            help="Use this broker (mqtt://HOST:PORT); only connected to, never started or stopped.",
        ),
    ] = None,
    sim_config: Annotated[
        Path | None,
        typer.Option("--sim-config", help="Simulator config (default: the demo district's field)."),
    ] = None,
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Where the demo keeps its outbox and status.")
    ] = DEMO_STATE_DIR,
    duration_s: Annotated[
        float | None,
        typer.Option("--duration", help="Stop after this many seconds (default: Ctrl-C)."),
    ] = None,
    plain: Annotated[
        bool,
        typer.Option(
            "--plain",
            help="One line per message instead of the live table (the default when the output "
            "is not a terminal or the terminal is too small for the table).",
        ),
    ] = False,
    speed: Annotated[
        float,
        typer.Option(
            "--speed",
            min=0.1,
            max=1000,
            help="Run the scripted morning this many times faster (the rules' own hold times, "
            "e.g. water above a level for 30 s, still take their real time).",
        ),
    ] = 1.0,
    no_scenario: Annotated[
        bool,
        typer.Option(
            "--no-scenario", help="A quiet district: no scripted morning, no simulated workers."
        ),
    ] = False,
    keep_state: Annotated[
        bool,
        typer.Option(
            "--keep-state",
            help="Continue the last run (its alarms, outboxes, sequences); default: start fresh.",
        ),
    ] = False,
    http: Annotated[
        str, typer.Option("--http", help="HOST:PORT of the cloud's web server (worker page, SMS).")
    ] = "127.0.0.1:8080",
    embedded_broker: Annotated[
        bool,
        typer.Option(
            "--embedded-broker",
            help="Use the pure-Python broker (amqtt, MQTT 3.1.1) even if mosquitto is installed.",
        ),
    ] = False,
) -> None:
    """The whole demo district, alive: simulated devices on real buses behind a real gateway,
    a fleet of gateways for the rest, a broker, the cloud, and a scripted morning that
    simulated grid workers answer. Ctrl-C stops all."""
    # the demo pulls in the most; load it only when asked
    from gridalarm.demo import DemoOptions, run_demo  # noqa: PLC0415

    logging.basicConfig(
        level=os.environ.get("GRIDALARM_LOG", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    options = DemoOptions(
        broker, sim_config, state_dir, duration_s, plain, embedded_broker, http,
        speed=speed, scenario=not no_scenario, keep_state=keep_state,
    )  # fmt: skip
    raise typer.Exit(run_demo(options))


def main() -> None:
    app()
