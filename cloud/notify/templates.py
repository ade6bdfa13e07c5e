"""Alarm texts in zh-CN and en that fit in one SMS, link and reply hint always included."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cloud.notify.errors import TemplateError
from cloud.notify.message import Locale, Message
from cloud.notify.smstext import fits_one_sms, fits_sms


@dataclass(frozen=True)
class AlarmFacts:
    """What a worker needs to read in the SMS; names already in the recipient's language."""

    kind: str
    """Alarm kind key: fire, flood, ebike_in_lift, manhole_open, device_fault, test."""
    device_id: str
    device_kind: str
    """Device kind key: smoke, ebike_blocker, manhole, water_level."""
    community: str
    place: str
    raised_at: datetime
    """Local wall-clock time of the district; only HH:MM is shown."""


@dataclass(frozen=True)
class Wording:
    """The fixed words of one locale."""

    brand: str
    reply_hint: str
    kinds: Mapping[str, str]
    devices: Mapping[str, str]
    summary_head: str
    item_sep: str
    more: str
    min_name_chars: int


WORDING: Mapping[Locale, Wording] = {
    Locale.ZH_CN: Wording(
        brand="【街道大脑】",
        reply_hint="回复1接单 2误报",
        kinds={
            "fire": "疑似火警",
            "flood": "积水预警",
            "ebike_in_lift": "电动车进梯",
            "manhole_open": "井盖异常",
            "device_fault": "设备故障",
            "test": "测试",
            "": "警情",
        },
        devices={
            "smoke": "烟感",
            "ebike_blocker": "阻车器",
            "manhole": "井盖",
            "water_level": "水位计",
        },
        summary_head="您的网格另有{n}条警情:",
        item_sep="；",
        more="等",
        min_name_chars=2,
    ),
    Locale.EN: Wording(
        brand="[Street Brain] ",
        reply_hint="Reply 1=take 2=false",
        kinds={
            "fire": "Suspected fire",
            "flood": "Flooding",
            "ebike_in_lift": "E-bike in lift",
            "manhole_open": "Manhole open",
            "device_fault": "Device fault",
            "test": "Test",
            "": "Alarm",
        },
        devices={
            "smoke": "smoke",
            "ebike_blocker": "lift blocker",
            "manhole": "manhole",
            "water_level": "water level",
        },
        summary_head="{n} more alarms in your grids:",
        item_sep="; ",
        more="...",
        min_name_chars=4,
    ),
}

_ORDER = ("community", "place", "device", "device_id", "time")
# Given up first to last when the text is too long; False = dropped whole, never truncated.
_SACRIFICE: tuple[tuple[str, bool], ...] = (
    ("device", False),
    ("time", False),
    ("community", True),
    ("device_id", False),
    ("place", True),
)


def render_alarm(facts: AlarmFacts, locale: Locale, link: str, segments: int = 1) -> str:
    """Alarm text of at most *segments* SMS (default one); optional fields shrink in a fixed
    order, never the link or the reply hint."""
    w = WORDING[locale]
    head = w.brand + _label(w.kinds, facts.kind)
    tail = f"{w.reply_hint} {link}"
    fields = {
        "community": _clean(facts.community),
        "place": _clean(facts.place),
        "device": _label(w.devices, facts.device_kind),
        "device_id": _clean(facts.device_id),
        "time": facts.raised_at.strftime("%H:%M"),
    }

    def compose() -> str:
        return " ".join([head, *(fields[k] for k in _ORDER if fields[k]), tail])

    return _shrink(fields, compose, w.min_name_chars, lambda t: fits_sms(t, segments))


def render_summary(items: Sequence[AlarmFacts], locale: Locale, link: str) -> str:
    """One-SMS digest of *items* ("3 more alarms in your grids: ... <link>")."""
    w = WORDING[locale]
    head = w.brand + w.summary_head.format(n=len(items))
    entries = [f"{_label(w.kinds, f.kind)} {_clean(f.place)}".strip() for f in items]
    core = f"{head} {link}"
    if not fits_one_sms(core):
        raise TemplateError(f"summary does not fit one SMS even without items: {core!r}")
    text = core
    for shown in range(1, len(entries) + 1):
        more = w.more if shown < len(entries) else ""
        candidate = f"{head} {w.item_sep.join(entries[:shown])}{more} {link}"
        if not fits_one_sms(candidate):
            break
        text = candidate
    return text


def _shrink(
    fields: dict[str, str], compose: Callable[[], str], min_chars: int, fits: Callable[[str], bool]
) -> str:
    text = compose()
    for name, truncatable in _SACRIFICE:
        if fits(text):
            return text
        while truncatable and len(fields[name]) > min_chars and not fits(text):
            fields[name] = fields[name][:-1].rstrip()
            text = compose()
        if not fits(text):
            fields[name] = ""
            text = compose()
    if not fits(text):
        raise TemplateError(
            f"alarm text does not fit the SMS limit even with every optional field dropped "
            f"({text!r}); use a shorter link base URL"
        )
    return text


def _label(table: Mapping[str, str], key: str) -> str:
    # An unknown key reads as the generic word ("警情" / "Alarm"), never as a code in the SMS.
    return table.get(key, table.get("", ""))


def _clean(value: str) -> str:
    return " ".join(value.split())


def title_and_body(msg: Message) -> tuple[str, str]:
    """Title (`data["title"]` or the brand) and the text without its trailing link."""
    brand = WORDING[msg.recipient.locale].brand.strip("【】[] ")
    body = msg.text.removesuffix(msg.link).rstrip() if msg.link else msg.text
    return str(msg.data.get("title", brand)), body
