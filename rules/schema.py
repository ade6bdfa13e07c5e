"""The YAML rule language as pydantic models (load time only; the engine never sees these).

A file holds ``rules``, ``correlations`` and ``overrides``; ``device_type`` is the default
scope of the file's rules, ``category`` and ``notify`` the default meaning of its rules and
correlations (each may set its own). Each rule picks its model by ``kind``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from rules.meaning import Category, Notify, rule_category
from rules.model import Clears, Severity

RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$")]
Reason = Annotated[
    str, Field(min_length=3, description="why this number: standard, datasheet or practice")
]
# Titles are the head of the alarm SMS, which must always fit with the link and reply hint
# (zh-CN in two segments, en in one): rules check refuses longer ones.
TITLE_EN_MAX = 40
TITLE_ZH_MAX = 20
TitleEn = Annotated[str, Field(min_length=1, max_length=TITLE_EN_MAX)]
TitleZh = Annotated[str, Field(min_length=1, max_length=TITLE_ZH_MAX)]
CATEGORY = "what the alarm is about (rules.meaning.Category); never guessed from the id"
RuleCategory = Annotated[Category, AfterValidator(rule_category)]
NOTIFY = "page: at once; summary: in the worker's next grouped summary; board: nobody messaged"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelSpec(_Spec):
    """One severity level of a threshold or rate rule."""

    severity: Severity = Field(description="severity while this level holds")
    raise_at: float = Field(description="raise at this value (>= when above, <= when below)")
    clear_at: float | None = Field(
        None, description="the level ends past this value (< when above); default raise_at"
    )
    reason: Reason
    title_en: TitleEn | None = Field(None, description="title of this level; default the rule's")
    title_zh: TitleZh | None = Field(None, description="中文标题; default the rule's")


class _RuleSpec(_Spec):
    id: RuleId = Field(description="unique across the rule set; keys alarms with the device")
    title_en: TitleEn = Field(description="English title: the words people read")
    title_zh: TitleZh = Field(description="中文标题: 告警短信里的用词")
    category: RuleCategory = Field(description=CATEGORY)
    notify: Notify = Field(description=NOTIFY)
    types: list[str] | None = Field(
        None, description="device types this rule applies to; default the file's device_type"
    )
    clears: Clears = Field(Clears.AUTO, description="auto: the sensor clears; manual: a person")
    description: str = Field("", description="free text")

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-field checks as (location, message); none by default."""
        return []


class _Levelled(_RuleSpec):
    levels: list[LevelSpec] = Field(min_length=1, description="ascending severity")
    for_s: float = Field(0.0, ge=0, description="on-delay: condition must hold this long")
    off_for_s: float = Field(0.0, ge=0, description="off-delay: improvement must hold this long")

    def level_problems(self, above: bool) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-level checks as (location, message): hysteresis side, order of levels."""
        sign = 1.0 if above else -1.0
        side = "above" if above else "below"
        out: list[tuple[tuple[str | int, ...], str]] = []
        prev: LevelSpec | None = None
        for n, lv in enumerate(self.levels):
            clear = lv.raise_at if lv.clear_at is None else lv.clear_at
            if sign * clear > sign * lv.raise_at:
                out.append((("levels", n, "clear_at"), f"must not be {side} raise_at (hysteresis)"))
            if prev is not None and lv.severity.rank <= prev.severity.rank:
                out.append((("levels", n, "severity"), "must be worse than the level before"))
            if prev is not None and sign * lv.raise_at <= sign * prev.raise_at:
                out.append((("levels", n, "raise_at"), f"must be {side} the level before"))
            prev = lv
        return out


class ThresholdSpec(_Levelled):
    """A measurement past a value, with hysteresis, severity levels and on/off delays."""

    kind: Literal["threshold"]
    measurement: str = Field(min_length=1, description="measurement name in data messages")
    direction: Literal["above", "below"] = Field("above", description="alarm above or below")

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        return self.level_problems(self.direction == "above")


class RateSpec(_Levelled):
    """Change of a measurement within a sliding window (levels are the change)."""

    kind: Literal["rate"]
    measurement: str = Field(min_length=1, description="measurement name in data messages")
    window_s: float = Field(gt=0, description="the window the change is measured over")
    direction: Literal["rising", "falling"] = Field("rising", description="which change")

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        return self.level_problems(above=True)


class _Single(_RuleSpec):
    severity: Severity = Field(description="severity of the alarm")
    reason: Reason


class EventSpec(_Single):
    """A discrete event: active true raises, false ends; momentary ones hold for hold_s."""

    kind: Literal["event"]
    event: str = Field(min_length=1, description="event name in event messages")
    hold_s: float = Field(60.0, ge=0, description="a momentary event's alarm lasts this long")
    record_only: bool = Field(False, description="recorded, never dispatched (test button)")

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        if self.record_only and self.notify is not Notify.BOARD:
            return [(("notify",), "a record_only rule never messages anyone: notify must be board")]
        return []


class CountSpec(_Single):
    """At least min_count events of one device within window_s."""

    kind: Literal["count"]
    event: str = Field(min_length=1, description="event name in event messages")
    min_count: int = Field(ge=2, description="events needed within the window")
    window_s: float = Field(gt=0, description="window length")


class DeadmanSpec(_Single):
    """No message from a device for factor x its heartbeat."""

    kind: Literal["deadman"]
    factor: float = Field(gt=0, description="multiple of DeviceInfo.heartbeat_s")


class QualitySpec(_Single):
    """A device whose gateway reports comm_error for at least for_s."""

    kind: Literal["quality"]
    for_s: float = Field(ge=0, description="how long comm_error must last")


class GatewaySpec(_Single):
    """A gateway offline (retained status / last will) for at least for_s."""

    kind: Literal["gateway_offline"]
    for_s: float = Field(0.0, ge=0, description="how long offline must last")
    inhibits_deadman: bool = Field(True, description="no deadman alarms for its devices")


RULE_MODELS: dict[str, type[_RuleSpec]] = {
    "threshold": ThresholdSpec,
    "rate": RateSpec,
    "event": EventSpec,
    "count": CountSpec,
    "deadman": DeadmanSpec,
    "quality": QualitySpec,
    "gateway_offline": GatewaySpec,
}
RuleSpec = (
    ThresholdSpec | RateSpec | EventSpec | CountSpec | DeadmanSpec | QualitySpec | GatewaySpec
)
DEVICE_KINDS = ("threshold", "rate", "event", "count", "deadman", "quality")


class CorrelationSpec(_Spec):
    """Alarms of distinct devices in one building within window_s confirm each other."""

    id: RuleId = Field(description="correlation id")
    rules: list[str] = Field(min_length=1, description="rule ids whose alarms correlate")
    group_by: Literal["building"] = Field("building", description="DeviceInfo field to group by")
    window_s: float = Field(120.0, gt=0, description="raises within this span correlate")
    min_devices: int = Field(2, ge=2, description="distinct devices needed")
    title_en: TitleEn = Field(description="title of the confirmation")
    title_zh: TitleZh = Field(description="确认标题")
    category: RuleCategory = Field(description=CATEGORY)
    notify: Notify = Field(description=NOTIFY + " (once confirmed)")
    reason: Reason


MATCH_ORDER = ("type", "community", "grid", "gateway", "device")  # least to most specific


class MatchSpec(_Spec):
    """Which devices an override applies to: exactly one of the keys."""

    device: str | None = Field(None, description="one device id")
    gateway: str | None = Field(None, description="devices of one gateway (and its own alarm)")
    grid: str | None = Field(None, description="devices of one grid")
    community: str | None = Field(None, description="devices of one community")
    type: str | None = Field(None, description="devices of one type")

    @model_validator(mode="after")
    def _exactly_one(self) -> MatchSpec:
        if sum(getattr(self, k) is not None for k in MATCH_ORDER) != 1:
            raise ValueError(f"give exactly one of {', '.join(MATCH_ORDER)}")
        return self

    def key(self) -> tuple[str, str]:
        for k in MATCH_ORDER:
            v = getattr(self, k)
            if v is not None:
                return k, v
        raise AssertionError("validated")  # pragma: no cover


class OverrideSpec(_Spec):
    """Change or disable one rule for some devices; the most specific match wins per field."""

    match: MatchSpec = Field(description="which devices")
    rule: str = Field(min_length=1, description="rule id")
    set: dict[str, Any] = Field(default_factory=dict, description="fields of the rule to change")
    disabled: bool | None = Field(None, description="true: off for these devices")
    reason: str = Field("", description="why")

    @model_validator(mode="after")
    def _does_something(self) -> OverrideSpec:
        if not self.set and self.disabled is None:
            raise ValueError("give set or disabled")
        # what a rule means is the same on every device; how urgently it is told may differ
        for k in ("id", "kind", "types", "direction", "category"):
            if k in self.set:
                raise ValueError(f"set cannot change {k}")
        return self


class RuleFileSpec(_Spec):
    """One rule file; entries stay raw here and are validated one by one (every error found)."""

    device_type: str | None = Field(None, description="default scope of this file's rules")
    category: RuleCategory | None = Field(
        None, description="default category of this file's rules and correlations"
    )
    notify: Notify | None = Field(
        None, description="default notify of this file's rules and correlations"
    )
    rules: list[dict[str, Any]] = Field(default_factory=list, description="the rules")
    correlations: list[dict[str, Any]] = Field(default_factory=list, description="correlations")
    overrides: list[dict[str, Any]] = Field(default_factory=list, description="overrides")
