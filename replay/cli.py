"""``gridalarm record``, ``gridalarm replay`` and ``gridalarm sim fleet``: thin shells.

The root app mounts them: ``app.command("record")(record_cmd)``,
``app.command("replay")(replay_cmd)`` and ``sim_app.command("fleet")(fleet_cmd)``.
Exit codes: 0 ok, 2 bad input or usage, 3 broker unreachable.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from replay.display import html_report, print_comparison, print_summary, print_timeline
from replay.errors import BrokerUnreachable, ReplayError
from replay.fleet import DEFAULT_START, FleetOptions, generate_fleet
from replay.link import BrokerTls
from replay.progress import ProgressBar
from replay.reader import RecordingReader
from replay.record import Recorder, RecordOptions
from replay.report import encode_report, transition_dict
from replay.republish import republish
from replay.session import ReplayOptions, run_replay
from rules.devices_csv import read_devices_csv
from wire.yamlconf import ConfigError

EXIT_BAD_INPUT = 2
EXIT_BROKER = 3

# soft_wrap: a line is never broken or cut to the terminal's width, so a message with a long
# path stays one line when piped or read by a program (tables still fit the width).
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(error: Exception) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(str(error))}")
    return typer.Exit(EXIT_BROKER if isinstance(error, BrokerUnreachable) else EXIT_BAD_INPUT)


def parse_speed(text: str | None) -> float | None:
    """``max`` → None (as fast as possible); a positive number → that factor."""
    if text is None or text.lower() == "max":
        return None
    try:
        speed = float(text.rstrip("xX"))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected max or a number such as 1 or 10") from None
    if not speed > 0:
        raise typer.BadParameter("speed must be positive")
    return speed


def record_cmd(  # noqa: PLR0917 - each parameter is a CLI option
    broker: Annotated[
        str,
        typer.Option(
            "--broker",
            envvar="GRIDALARM_BROKER",
            help="Broker to record from, mqtt://HOST:PORT or mqtts://HOST:PORT (TLS).",
        ),
    ],
    out_file: Annotated[Path, typer.Option("--out", help="Recording to write (.jsonl.gz).")],
    duration_s: Annotated[
        float | None,
        typer.Option(
            "--duration", help="Stop after this many seconds (default: Ctrl-C / SIGTERM)."
        ),
    ] = None,
    registry: Annotated[
        Path | None,
        typer.Option(
            "--registry", help="Device CSV to embed in the header, so replay needs no other file."
        ),
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            "--ca-file",
            envvar="GRIDALARM_BROKER_CA_FILE",
            help="mqtts://: CA certificate(s) to check the broker against (default: the system's).",
        ),
    ] = None,
    cert_file: Annotated[
        Path | None,
        typer.Option(
            "--cert",
            envvar="GRIDALARM_BROKER_CERT_FILE",
            help="mqtts://: client certificate (PEM) for a broker that asks for one; with --key.",
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key",
            envvar="GRIDALARM_BROKER_KEY_FILE",
            help="mqtts://: the client certificate's key.",
        ),
    ] = None,
) -> None:
    """Record every wire message with its receive time (gzip'd JSON lines)."""
    tls = None
    if (ca_file, cert_file, key_file) != (None, None, None):
        tls = BrokerTls(ca_file, cert_file, key_file)
    try:
        devices = None
        if registry is not None:
            devices = read_devices_csv(registry.read_text(encoding="utf-8"), str(registry))
        recorder = Recorder(RecordOptions(broker, out_file, duration_s, devices, tls=tls))
        count = asyncio.run(_record(recorder))
    except (ReplayError, ConfigError, OSError) as error:
        raise _fail(error) from None
    err.print(f"recorded {count} messages to {escape(str(out_file))}")


async def _record(recorder: Recorder) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, recorder.stop)
    return await recorder.run()


def replay_cmd(  # noqa: PLR0917 - each parameter is a CLI option
    file: Annotated[Path, typer.Argument(help="A recording (from record or sim fleet).")],
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="Rule folder (*.yaml); default: the shipped library."),
    ] = None,
    speed: Annotated[
        str | None,
        typer.Option(
            "--speed",
            help="max, or a factor on the recorded pacing (1, 10, …). "
            "Default: max offline, 1 with --to-broker.",
        ),
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write the JSON report.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write an HTML report.")] = None,
    compare: Annotated[
        Path | None,
        typer.Option("--compare", help="Second rule folder: alarms only in A, only in B, shifted."),
    ] = None,
    to_broker: Annotated[
        str | None,
        typer.Option(
            "--to-broker", help="Re-publish the stream to this broker instead (mqtt://HOST:PORT)."
        ),
    ] = None,
    registry: Annotated[
        Path | None,
        typer.Option(
            "--registry", help="Device CSV (default: the devices in the recording's header)."
        ),
    ] = None,
    timeline: Annotated[
        int, typer.Option("--timeline", help="Print at most this many timeline lines.")
    ] = 200,
    tz_offset_h: Annotated[
        float, typer.Option("--tz-offset", help="Hours east of UTC for printed times.")
    ] = 8.0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            min=1,
            help="Processes for an unpaced replay, split by gateway (same report). "
            "Default: one per core for recordings over 16 MB.",
        ),
    ] = None,
) -> None:
    """Run a recording through a rule set offline (no side effects), or onto a live broker."""
    pace = parse_speed(speed)
    bar = ProgressBar(err, enabled=progress)
    try:
        if to_broker is not None:
            _to_broker(file, to_broker, 1.0 if speed is None else pace, bar)
            return
        live = pace is not None
        with bar:
            outcome = run_replay(
                ReplayOptions(file, rules, compare, registry, pace, jobs),
                bar.replay,
                (lambda s: print_timeline(out, [transition_dict(s)], 1, tz_offset_h))
                if live
                else None,
            )
    except (ReplayError, OSError) as error:
        raise _fail(error) from None
    for warning in outcome.warnings:
        err.print(f"[yellow]warning:[/] {escape(str(warning))}")
    data = outcome.report
    if not live:
        print_timeline(out, data["transitions"], timeline, tz_offset_h)
    print_summary(out, data["summary"], data["stats"])
    if "compare" in data:
        print_comparison(out, data["compare"], tz_offset_h)
    stats, run = data["stats"], outcome.run
    rate = stats["readings"] / run.elapsed_s if run.elapsed_s else 0.0
    err.print(
        f"{stats['lines']} messages, {stats['readings']} readings in {run.elapsed_s:.1f} s "
        f"({rate:,.0f} readings/s)"
    )
    try:
        if report is not None:
            report.write_bytes(encode_report(data))
        if html is not None:
            html.write_text(html_report(data, tz_offset_h), encoding="utf-8")
    except OSError as error:
        raise _fail(error) from None


def _to_broker(file: Path, broker: str, speed: float | None, bar: ProgressBar) -> None:
    with RecordingReader(file) as reader, bar:
        bar.start("re-publishing", reader.size)
        result = asyncio.run(republish(reader, broker, speed, lambda _n: bar.bytes(reader)))
        warnings = reader.stats.warnings()
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(str(warning))}")
    err.print(
        f"re-published {result.messages} messages ({result.span_s:.1f} s of recording) "
        f"in {result.elapsed_s:.1f} s"
    )


# the synthetic district's options, shared with the root app's live `sim fleet`
FleetDevices = Annotated[int, typer.Option("--devices", min=1, help="How many devices.")]
FleetHours = Annotated[float, typer.Option("--hours", min=0.1, help="Span of the recording.")]
FleetSeed = Annotated[int, typer.Option("--seed", help="Same seed, same bytes.")]
FleetStart = Annotated[
    float,
    typer.Option(
        "--start", help="Unix time of the first second (default 2024-06-01 00:00 +08:00)."
    ),
]
FleetHeartbeat = Annotated[
    float,
    typer.Option(
        "--heartbeat",
        min=1.0,
        help="Device heartbeat in seconds (600 keeps a day ~15M readings; live, the one "
        "registered in the devices CSV: the cloud's deadman rules scale with it).",
    ),
]
FleetFires = Annotated[int, typer.Option("--fires", min=0, help="Scripted fires.")]
FleetFaults = Annotated[int, typer.Option("--faults", min=0, help="Devices that stop answering.")]
FleetProgress = Annotated[bool, typer.Option(help="Show a progress bar.")]


def fleet_cmd(  # noqa: PLR0917 - each parameter is a CLI option
    out_file: Annotated[Path, typer.Option("--out", help="Recording to write (.jsonl.gz).")],
    devices: FleetDevices = 10_000,
    hours: FleetHours = 24.0,
    seed: FleetSeed = 1,
    start: FleetStart = DEFAULT_START,
    heartbeat_s: FleetHeartbeat = 600.0,
    fires: FleetFires = 6,
    faults: FleetFaults = 20,
    progress: FleetProgress = True,
) -> None:
    """Write a synthetic recording of a district (daily patterns, rain, fires, faults)."""
    opts = FleetOptions(
        devices=devices,
        hours=hours,
        seed=seed,
        start=start,
        heartbeat_s=heartbeat_s,
        sample_s=min(300.0, heartbeat_s / 2),
        fires=fires,
        faults=faults,
    )
    bar = ProgressBar(err, enabled=progress)
    try:
        with bar:
            bar.start("generating", 1.0)
            summary = generate_fleet(out_file, opts, bar.fraction)
    except OSError as error:
        raise _fail(error) from None
    kinds: dict[str, int] = {}
    for i in summary.incidents:
        kinds[i.kind] = kinds.get(i.kind, 0) + 1
    err.print(
        f"{escape(str(out_file))}: {summary.devices} devices on {summary.gateways} gateways, "
        f"{summary.messages} messages, {summary.readings} readings; incidents {kinds}"
    )


if __name__ == "__main__":  # pragma: no cover - for running without the root app
    app = typer.Typer(add_completion=False)
    app.command("record")(record_cmd)
    app.command("replay")(replay_cmd)
    app.command("fleet")(fleet_cmd)
    app(prog_name="python -m replay.cli")
