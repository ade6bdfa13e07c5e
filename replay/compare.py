"""Backtesting a rule change: which alarms two rule sets raise differently on one stream.

An alarm is a RAISE and lasts until its key's next CLEAR (or the end of the replay). An alarm
of A and one of B *match* when they have the same key and their spans overlap (first come,
first matched); a match at the same raise time is the same alarm, otherwise it is *shifted*
by ``b.ts - a.ts``. What is left unmatched is only in A or only in B.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from replay.replay import Step
from rules import TransitionKind

EPSILON_S = 1e-6


@dataclass(frozen=True, slots=True)
class Alarm:
    step: Step
    until: float  # ts of the clearing transition, or +inf

    @property
    def ts(self) -> float:
        return self.step.transition.ts


@dataclass
class Comparison:
    only_a: list[Alarm]
    only_b: list[Alarm]
    shifted: list[tuple[Alarm, Alarm]]
    same: list[tuple[Alarm, Alarm]]

    def as_dict(self) -> dict[str, object]:
        def one(a: Alarm) -> dict[str, object]:
            t = a.step.transition
            return {
                "key": t.key,
                "rule_id": t.rule_id,
                "device": t.device,
                "severity": t.severity.value,
                "ts": t.ts,
            }

        def pair(a: Alarm, b: Alarm) -> dict[str, object]:
            ta, tb = a.step.transition, b.step.transition
            return {
                "key": ta.key,
                "rule_id": ta.rule_id,
                "device": ta.device,
                "a_ts": ta.ts,
                "b_ts": tb.ts,
                "shift_s": round(tb.ts - ta.ts, 6),
                "a_severity": ta.severity.value,
                "b_severity": tb.severity.value,
            }

        severity_changed = [
            pair(a, b)
            for a, b in self.same + self.shifted
            if a.step.transition.severity != b.step.transition.severity
        ]
        return {
            "counts": {
                "only_a": len(self.only_a),
                "only_b": len(self.only_b),
                "shifted": len(self.shifted),
                "same": len(self.same),
                "severity_changed": len(severity_changed),
            },
            "only_a": [one(a) for a in self.only_a],
            "only_b": [one(b) for b in self.only_b],
            "shifted": [pair(a, b) for a, b in self.shifted],
            "severity_changed": severity_changed,
        }


def alarms(steps: Sequence[Step]) -> dict[str, list[Alarm]]:
    """Alarms by key, in raise order, each with the time its key was next cleared."""
    out: dict[str, list[Alarm]] = {}
    open_: dict[str, Step] = {}
    for step in steps:
        t = step.transition
        if t.kind is TransitionKind.RAISE:
            if t.key in open_:  # raised again without a clear we saw: close the old one here
                out.setdefault(t.key, []).append(Alarm(open_[t.key], t.ts))
            open_[t.key] = step
        elif t.kind is TransitionKind.CLEAR and t.key in open_:
            out.setdefault(t.key, []).append(Alarm(open_.pop(t.key), t.ts))
    for key, step in open_.items():
        out.setdefault(key, []).append(Alarm(step, math.inf))
    for found in out.values():
        found.sort(key=lambda a: a.ts)
    return out


def compare(a_steps: Sequence[Step], b_steps: Sequence[Step]) -> Comparison:
    a_by_key, b_by_key = alarms(a_steps), alarms(b_steps)
    result = Comparison([], [], [], [])
    for key in sorted(a_by_key.keys() | b_by_key.keys()):
        _match(a_by_key.get(key, []), b_by_key.get(key, []), result)
    for group in (result.only_a, result.only_b):
        group.sort(key=lambda x: (x.ts, x.step.transition.key))
    for pairs in (result.shifted, result.same):
        pairs.sort(key=lambda p: (p[0].ts, p[0].step.transition.key))
    return result


def _match(a_list: list[Alarm], b_list: list[Alarm], result: Comparison) -> None:
    b_free = list(b_list)
    for a in a_list:
        partner = next((b for b in b_free if b.ts <= a.until and a.ts <= b.until), None)
        if partner is None:
            result.only_a.append(a)
            continue
        b_free.remove(partner)
        if abs(partner.ts - a.ts) <= EPSILON_S:
            result.same.append((a, partner))
        else:
            result.shifted.append((a, partner))
    result.only_b.extend(b_free)
