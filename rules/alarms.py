"""The open alarms, and what a condition's change of level means for them.

One open alarm per key. A condition reaching a level RAISEs, a worse level UPGRADEs, a better
one DOWNGRADEs, the end CLEARs, but only for rules that clear by themselves: a manual alarm
keeps its worst severity and notes the condition's end once as a RECORD until a person
closes it. During a device's maintenance every transition becomes SUPPRESSED and the open
alarms stay as they were; at the end of the maintenance the engine reconciles. Raises of
correlated rules in one building within the window CONFIRM each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rules.compiled import Correlation
from rules.conds import Cond
from rules.model import SEVERITIES, OpenAlarm, Severity, Transition, TransitionKind

K = TransitionKind
NEG_INF = float("-inf")


class Alarm:
    """An open alarm (mutable; ``OpenAlarm`` is its public, frozen view)."""

    __slots__ = (
        "clears",
        "confirmed",
        "device",
        "ended",
        "gateway",
        "key",
        "level",
        "rank",
        "rule_id",
        "since",
    )

    def __init__(self, cond: Cond, level: int, since: float) -> None:
        self.key = cond.key
        self.rule_id = cond.rule.id
        self.device = cond.dev
        self.gateway = cond.gw
        self.level = level
        self.rank = cond.rule.levels[level].severity.rank
        self.since = since
        self.confirmed = False
        self.ended = False  # a manual alarm whose condition is over, waiting for a person
        self.clears = cond.rule.clears.value

    def view(self) -> OpenAlarm:
        return OpenAlarm(
            self.key,
            self.rule_id,
            self.device,
            self.gateway,
            SEVERITIES[self.rank],
            self.since,
            self.confirmed,
        )

    def dump(self) -> list[Any]:
        return [self.key, self.rule_id, self.device, self.gateway, self.level, self.rank,
                self.since, self.confirmed, self.ended, self.clears]  # fmt: skip

    @classmethod
    def load(cls, data: list[Any]) -> Alarm:
        a = cls.__new__(cls)
        (a.key, a.rule_id, a.device, a.gateway, a.level, a.rank, a.since, a.confirmed, a.ended,
         a.clears) = data  # fmt: skip
        return a


def transition(
    kind: TransitionKind,
    cond: Cond,
    *,
    severity: Severity,
    ts: float,
    level: int,
    detail: dict[str, Any],
) -> Transition:
    rule = cond.rule
    lv = rule.levels[max(level, 0)]
    return Transition(
        kind, cond.key, rule.id, cond.dev, cond.gw, severity, ts,
        lv.title_en, lv.title_zh, rule.category, rule.notify, cond.value(), rule.clears.value,
        detail,
    )  # fmt: skip


class AlarmBook:
    """Open alarms, maintenance windows and correlation groups; appends to ``out``."""

    def __init__(
        self, correlated: dict[str, tuple[Correlation, ...]], building: Callable[[str], str]
    ) -> None:
        self.open: dict[str, Alarm] = {}
        self.maint: dict[str, float] = {}  # device -> maintenance until (event time)
        self.groups: dict[str, list[list[Any]]] = {}  # f"{corr}/{building}" -> [[ts, dev, key]]
        self.out: list[Transition] = []
        self._correlated = correlated
        self._building = building

    def _decide(self, cond: Cond, cur: Alarm | None) -> TransitionKind | None:
        level, rule = cond.level, cond.rule
        if cur is None:
            return K.RAISE if level >= 0 and not cond.latched else None
        if level < 0:
            if rule.auto:
                return K.CLEAR
            return None if cur.ended else K.RECORD
        rank = rule.levels[level].severity.rank
        if rank > cur.rank:
            return K.UPGRADE
        if rank < cur.rank and rule.auto:
            return K.DOWNGRADE
        return K.RECORD if cur.ended else None  # a manual alarm's condition is back

    def publish(self, cond: Cond, ts: float, extra: dict[str, Any] | None) -> None:
        """Turn the condition's (new) level into a transition, if it means one."""
        cur = self.open.get(cond.key)
        kind = self._decide(cond, cur)
        if kind is None:
            return
        if cur is not None and kind in (K.CLEAR, K.RECORD):  # about the alarm as it stands
            at, rank = cur.level, cur.rank
        else:
            at = cond.level
            rank = cond.rule.levels[at].severity.rank
        detail = cond.detail(at)
        if extra:
            detail.update(extra)
        if kind is K.RECORD:
            detail["condition"] = "ended" if cond.level < 0 else "resumed"
        if cond.dev is not None and ts < self.maint.get(cond.dev, NEG_INF):
            detail["suppressed"] = kind.value
            self.out.append(
                transition(
                    K.SUPPRESSED, cond, severity=SEVERITIES[rank], ts=ts, level=at, detail=detail
                )
            )
            return
        self.out.append(
            transition(kind, cond, severity=SEVERITIES[rank], ts=ts, level=at, detail=detail)
        )
        self._apply(kind, cond, cur, ts)

    def _apply(self, kind: TransitionKind, cond: Cond, cur: Alarm | None, ts: float) -> None:
        if kind is K.RAISE:
            alarm = self.open[cond.key] = Alarm(cond, cond.level, ts)
            if self._correlated.get(cond.rule.id) and cond.dev is not None:
                self._correlate(cond, alarm, ts)
        elif cur is None:
            return
        elif kind is K.CLEAR:
            del self.open[cond.key]
        elif kind is K.RECORD:
            cur.ended = cond.level < 0
        else:
            cur.level = cond.level
            cur.rank = cond.rule.levels[cond.level].severity.rank

    def record(self, cond: Cond, ts: float, extra: dict[str, Any]) -> None:
        """A recorded, never dispatched event (suppressed too during maintenance)."""
        sev = cond.rule.levels[0].severity
        if cond.dev is not None and ts < self.maint.get(cond.dev, NEG_INF):
            self.out.append(
                transition(
                    K.SUPPRESSED,
                    cond,
                    severity=sev,
                    ts=ts,
                    level=0,
                    detail={**extra, "suppressed": "record"},
                )
            )
            return
        self.out.append(transition(K.RECORD, cond, severity=sev, ts=ts, level=0, detail=extra))

    def suppress(self, cond: Cond, ts: float, extra: dict[str, Any]) -> None:
        """What would have been raised, held back (an inhibition)."""
        detail = {**cond.detail(0), **extra, "suppressed": K.RAISE.value}
        self.out.append(
            transition(
                K.SUPPRESSED,
                cond,
                severity=cond.rule.levels[0].severity,
                ts=ts,
                level=0,
                detail=detail,
            )
        )

    def close(self, key: str, cond: Cond | None) -> bool:
        """A person closed the alarm; a condition still on must end before it raises again."""
        if self.open.pop(key, None) is None:
            return False
        if cond is not None and cond.level >= 0:
            cond.latched = True
        return True

    def reconcile(self, conds: tuple[Cond, ...], ts: float) -> None:
        """Maintenance over: publish whatever differs between conditions and open alarms."""
        for cond in conds:
            self.publish(cond, ts, {"after_maintenance": True})

    def _correlate(self, cond: Cond, alarm: Alarm, ts: float) -> None:
        building = self._building(alarm.device or "")
        if not building:
            return
        for corr in self._correlated[cond.rule.id]:
            group = self.groups.setdefault(f"{corr.id}/{building}", [])
            group[:] = [e for e in group if e[0] >= ts - corr.window_s and e[2] in self.open]
            group.append([ts, alarm.device, alarm.key])
            members = [e for e in group if abs(e[0] - ts) <= corr.window_s]
            devices = sorted({e[1] for e in members})
            if len(devices) < corr.min_devices:
                continue
            for e in members:
                self._confirm(corr, self.open[e[2]], devices, building, ts)

    def _confirm(
        self, corr: Correlation, alarm: Alarm, devices: list[str], building: str, ts: float
    ) -> None:
        if alarm.confirmed:
            return
        alarm.confirmed = True
        detail = {"correlation": corr.id, "building": building, "confirmed_by": devices}
        sev = SEVERITIES[alarm.rank]
        kind = K.CONFIRM
        if alarm.device is not None and ts < self.maint.get(alarm.device, NEG_INF):
            kind, detail["suppressed"] = K.SUPPRESSED, K.CONFIRM.value
        self.out.append(
            Transition(
                kind,
                alarm.key,
                alarm.rule_id,
                alarm.device,
                alarm.gateway,
                sev,
                ts,
                corr.title_en,
                corr.title_zh,
                corr.category,
                corr.notify,
                None,
                alarm.clears,
                detail,
            )
        )
