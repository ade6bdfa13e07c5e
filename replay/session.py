"""One replay from options to report: load rules and registry, run, compare, build the report.

The CLI and the benchmark both call ``run_replay``; nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replay.compare import Comparison, compare
from replay.errors import ReplayError, RulesError
from replay.parallel import auto_jobs, inflate_aside, plan, replay_parallel
from replay.reader import RecordingReader
from replay.recording import header_devices
from replay.replay import Progress, ReplayRun, Step, replay
from replay.report import RulesInfo, build_report
from rules import DeviceInfo, Engine, parse_ruleset
from rules.devices_csv import read_devices_csv
from rules.folder import rule_texts
from wire.yamlconf import ConfigError


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    file: Path
    rules: Path | None = None  # None: the shipped library
    compare: Path | None = None  # a second rule set to backtest against
    registry: Path | None = None  # device CSV; default: the recording header's devices
    speed: float | None = None  # None: as fast as possible
    jobs: int | None = None  # processes (replay.parallel); None: one per core for a big file


@dataclass
class ReplayOutcome:
    report: dict[str, Any]
    run: ReplayRun
    comparison: Comparison | None
    warnings: list[str]


@dataclass(frozen=True, slots=True)
class LoadedRules:
    engine: Engine
    info: RulesInfo
    texts: dict[str, str]  # file → text: what other processes of a parallel replay parse


def load_engine(directory: Path | None) -> LoadedRules:
    """An engine for a rule folder (or the library); RulesError names file, line and field."""
    try:
        texts = rule_texts(directory)
        ruleset = parse_ruleset(texts)
    except ConfigError as err:
        raise RulesError(f"rules {directory or 'library'}:\n{err}") from err
    label = "library" if directory is None else directory.name or str(directory)
    return LoadedRules(Engine(ruleset), RulesInfo.of(label, texts), dict(texts))


def load_registry(reader: RecordingReader, csv_path: Path | None) -> dict[str, DeviceInfo]:
    if csv_path is not None:
        try:
            devices = read_devices_csv(csv_path.read_text(encoding="utf-8"), str(csv_path))
        except OSError as err:
            raise ReplayError(f"{csv_path}: cannot read: {err.strerror}") from err
        except ConfigError as err:
            raise ReplayError(str(err)) from err
    else:
        found = header_devices(reader.header, str(reader.path))
        if found is None:
            raise ReplayError(
                f"{reader.path}: the recording embeds no device registry; pass --registry FILE.csv"
            )
        devices = found
    return {d.device: d for d in devices}


def run_replay(
    opts: ReplayOptions,
    progress: Callable[[Progress], None] | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> ReplayOutcome:
    loaded = [load_engine(opts.rules)]
    if opts.compare is not None:
        loaded.append(load_engine(opts.compare))
    engines = [x.engine for x in loaded]
    rules = [x.info for x in loaded]
    paced = opts.speed is not None or on_step is not None
    jobs = 1 if paced else opts.jobs if opts.jobs is not None else auto_jobs(opts.file)
    with RecordingReader(opts.file, threaded=inflate_aside(jobs)) as reader:
        registry = load_registry(reader, opts.registry)
        the_plan = plan(registry, jobs) if jobs > 1 else None
        if the_plan is None or the_plan.parts == 1:
            run = replay(reader, engines, registry, progress, opts.speed, on_step)
        else:
            texts = [x.texts for x in loaded]
            run = replay_parallel(reader, engines, texts, registry, the_plan, progress)
        comparison = compare(run.steps[0], run.steps[1]) if len(engines) > 1 else None
        report = build_report(reader, rules, run, registry, comparison)
        if comparison is not None:
            report["compare"]["label_a"] = rules[0].label
        return ReplayOutcome(report, run, comparison, reader.stats.warnings())
