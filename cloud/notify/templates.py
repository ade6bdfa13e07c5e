"""Alarm texts in zh-CN and en that fit in one SMS, link and reply hint always included."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cloud.notify.errors import TemplateError
from cloud.notify.message import Locale, Message
from cloud.notify.smstext import fits_sms
from rules.meaning import Category


@dataclass(frozen=True)
class AlarmFacts:
    """What a worker needs to read in the SMS; words already in the recipient's language."""

    title: str
    """What happened, in the rule's own words (its ``title_zh`` or ``title_en``)."""
    device_id: str
    device_kind: str
    """Device kind key: smoke, ebike_blocker, manhole, water_level."""
    community: str
    place: str
    raised_at: datetime
    """Local wall-clock time of the district; only HH:MM is shown."""
    category: Category | None = None
    """What the alarm is about (None: raised before rules declared it); orders summaries."""


@dataclass(frozen=True)
class Wording:
    """The fixed words of one locale."""

    brand: str
    reply_hint: str
    untitled: str
    devices: Mapping[str, str]
    summary_head: str
    item_sep: str
    more: str
    min_name_chars: int


WORDING: Mapping[Locale, Wording] = {
    Locale.ZH_CN: Wording(
        brand="【街道大脑】",
        reply_hint="回复1接单 2误报",
        untitled="警情",
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
        untitled="Alarm",
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
    head = w.brand + _title(w, facts)
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


def render_summary(
    items: Sequence[AlarmFacts], locale: Locale, link: str, segments: int = 1
) -> str:
    """Digest of *items* in at most *segments* SMS (default one): "3 more alarms in your
    grids: ... <link>", the most urgent categories named first."""
    w = WORDING[locale]
    head = w.brand + w.summary_head.format(n=len(items))
    ordered = sorted(items, key=_first_named)  # what fits one SMS is what matters most
    entries = [f"{_title(w, f)} {_clean(f.place)}".strip() for f in ordered]
    core = f"{head} {link}"
    if not fits_sms(core, segments):
        raise TemplateError(f"summary does not fit {segments} SMS even without items: {core!r}")
    text = core
    for shown in range(1, len(entries) + 1):
        more = w.more if shown < len(entries) else ""
        candidate = f"{head} {w.item_sep.join(entries[:shown])}{more} {link}"
        if not fits_sms(candidate, segments):
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


# Summary order: people in danger first, then what only needs someone to come by.
_SUMMARY_ORDER = (
    Category.FIRE,
    Category.FLOOD,
    Category.MANHOLE,
    Category.EBIKE,
    Category.REPORT,
    Category.GATEWAY,
    Category.DEVICE_FAULT,
    Category.TEST,
)


_SUMMARY_RANK: Mapping[Category | None, int] = {c: n for n, c in enumerate(_SUMMARY_ORDER)}


def _first_named(facts: AlarmFacts) -> int:
    return _SUMMARY_RANK.get(facts.category, len(_SUMMARY_RANK))


def _title(w: Wording, facts: AlarmFacts) -> str:
    # A blank title reads as the generic word ("警情" / "Alarm"), never as a code in the SMS.
    return _clean(facts.title) or w.untitled


def _label(table: Mapping[str, str], key: str) -> str:
    # An unknown key reads as nothing, never as a code in the SMS.
    return table.get(key, "")


def _clean(value: str) -> str:
    return " ".join(value.split())


def title_and_body(msg: Message) -> tuple[str, str]:
    """Title (`data["title"]` or the brand) and the text without its trailing link."""
    brand = WORDING[msg.recipient.locale].brand.strip("【】[] ")
    body = msg.text.removesuffix(msg.link).rstrip() if msg.link else msg.text
    return str(msg.data.get("title", brand)), body
