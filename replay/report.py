"""The replay's JSON report: provenance, counts, a summary and every transition.

Deterministic by construction: only what follows from the recording and the rules goes in
(no wall-clock times, no absolute paths, keys sorted), so the same file and rules give the
same bytes. ``transitions`` lists (kind, key, severity, ts, ...) in decision order: the list
a live run's alarm table is compared with.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from replay.compare import Comparison
from replay.reader import RecordingReader
from replay.replay import ReplayRun, Step
from rules import DeviceInfo, Severity, TransitionKind

REPORT_FORMAT = "gridalarm-replay-report"
REPORT_VERSION = 1
TOP_DEVICES = 10


@dataclass(frozen=True, slots=True)
class RulesInfo:
    """Which rule set: its file names and a hash of their contents."""

    label: str  # "library" or the folder's name
    files: tuple[str, ...]
    sha256: str

    @classmethod
    def of(cls, label: str, texts: Mapping[str, str]) -> RulesInfo:
        digest = hashlib.sha256()
        names = []
        for path in sorted(texts, key=lambda p: Path(p).name):
            name = Path(path).name
            names.append(name)
            digest.update(f"{name}\0{texts[path]}\0".encode())
        return cls(label, tuple(names), digest.hexdigest())

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "files": list(self.files), "sha256": self.sha256}


def transition_dict(step: Step) -> dict[str, Any]:
    t = step.transition
    return {
        "kind": t.kind.value,
        "key": t.key,
        "severity": t.severity.value,
        "ts": t.ts,
        "rule_id": t.rule_id,
        "device": t.device,
        "gateway": t.gateway,
        "rt": step.rt,
        "trigger_ts": step.trigger_ts,
        "title_en": t.title_en,
        "title_zh": t.title_zh,
        "value": t.value,
        "clears": str(t.clears),
        "detail": t.detail,
    }


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: the figure is one that happened)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return round(sorted_values[rank - 1], 6)


def _ranked(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def summarize(steps: Sequence[Step], registry: Mapping[str, DeviceInfo]) -> dict[str, Any]:
    """Alarms (RAISEs) by rule, severity, device type and device; time to raise."""
    kinds = Counter(s.transition.kind.value for s in steps)
    raises = [s for s in steps if s.transition.kind is TransitionKind.RAISE]
    by_rule = Counter(s.transition.rule_id for s in raises)
    by_severity = Counter(s.transition.severity.value for s in raises)
    by_type = Counter(_type(s, registry) for s in raises)
    by_device = Counter(s.transition.device or s.transition.gateway for s in raises)
    delays = sorted(
        max(0.0, s.transition.ts - s.trigger_ts) for s in raises if s.trigger_ts is not None
    )
    severities = [sev.value for sev in sorted(Severity, reverse=True)]
    return {
        "transitions": len(steps),
        "by_kind": _ranked(kinds),
        "alarms": len(raises),
        "by_rule": _ranked(by_rule),
        "by_severity": {s: by_severity[s] for s in severities if by_severity[s]},
        "by_device_type": _ranked(by_type),
        "top_devices": list(_ranked(by_device).items())[:TOP_DEVICES],
        "time_to_raise_s": {
            "median": _percentile(delays, 50),
            "p95": _percentile(delays, 95),
            "max": round(delays[-1], 6) if delays else None,
        },
    }


def _type(step: Step, registry: Mapping[str, DeviceInfo]) -> str:
    device = registry.get(step.transition.device or "")
    return device.type if device else "gateway"


def recording_info(reader: RecordingReader) -> dict[str, Any]:
    h = reader.header
    return {
        "file": reader.path.name,
        "sha256": reader.stats.sha256,
        "start": h.start,
        "broker": h.broker,
        "source": h.source,
        "lines": reader.stats.lines,
        "bad_lines": reader.stats.bad_lines,
        "truncated": reader.stats.truncated,
        "damaged": reader.stats.damaged,
    }


def build_report(
    reader: RecordingReader,
    rules: Sequence[RulesInfo],
    run: ReplayRun,
    registry: Mapping[str, DeviceInfo],
    comparison: Comparison | None = None,
) -> dict[str, Any]:
    """The whole report as plain data (rule set A first; B under ``compare`` if given)."""
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "recording": recording_info(reader),
        "rules": rules[0].as_dict(),
        "stats": run.stats.as_dict(),
        "summary": summarize(run.steps[0], registry),
        "transitions": [transition_dict(s) for s in run.steps[0]],
    }
    if comparison is not None and len(rules) > 1:
        report["compare"] = {
            "rules": rules[1].as_dict(),
            "summary": summarize(run.steps[1], registry),
            "transitions": [transition_dict(s) for s in run.steps[1]],
            **comparison.as_dict(),
        }
    return report


def _default(obj: Any) -> Any:
    """Anything the engine put in ``detail`` that JSON has no type for."""
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=str)
    return str(obj)


_encoder = msgspec.json.Encoder(enc_hook=_default, order="sorted")


def encode_report(report: Mapping[str, Any]) -> bytes:
    """Pretty, key-sorted JSON with a final newline."""
    return msgspec.json.format(_encoder.encode(report), indent=1) + b"\n"
