"""Alarm texts take the rule's own words and category, in both locales, never its id."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from cloud.dispatch.texts import SEGMENTS, NotifyRenderer
from cloud.lifecycle import AlarmView, State, Target
from cloud.lifecycle.model import Notice, NoticeKind
from cloud.notify import LinkSigner, Locale
from cloud.notify.smstext import fits_sms, sms_units
from cloud.notify.templates import WORDING
from cloud.registry.model import Registry
from rules import Notify, library_texts, parse_ruleset
from rules.schema import TITLE_EN_MAX, TITLE_ZH_MAX

RULESET = parse_ruleset(library_texts())
RAISED = datetime(2025, 3, 14, 6, 0, tzinfo=UTC).timestamp()


def library_alarms() -> list[AlarmView]:
    """One alarm per rule, level and correlation of the shipped library, as the lifecycle
    hands it over (titles, category and notify stored from the transition)."""
    out = []
    for rule in RULESET.rules.values():
        for level in rule.levels:
            out.append(view(rule.id, level.title_en, level.title_zh, rule.category, rule.notify))
    for corr in RULESET.correlations:
        out.append(view(corr.id, corr.title_en, corr.title_zh, corr.category, corr.notify))
    return out


def view(rule_id: str, title_en: str, title_zh: str, category: object, notify: Notify) -> AlarmView:
    return AlarmView(
        48213, f"dev-0042/{rule_id}", rule_id, "dev-0042", "gw-1", "warning", title_en,
        title_zh, category, notify, "auto", State.RAISED, RAISED,
    )  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture(scope="module")
def renderer() -> NotifyRenderer:
    return NotifyRenderer(
        LinkSigner("0123456789abcdef-link-secret"),
        "https://jd.example.cn",
        Registry(),
        {},
        clock=lambda: RAISED,
    )


ALARMS = library_alarms()


@pytest.mark.parametrize("locale", list(Locale))
@pytest.mark.parametrize("alarm", ALARMS, ids=[f"{a.rule_id}:{a.title_en}" for a in ALARMS])
def test_every_library_alarm_reads_in_its_rule_words(
    renderer: NotifyRenderer, alarm: AlarmView, locale: Locale
) -> None:
    title = alarm.title_zh if locale is Locale.ZH_CN else alarm.title_en
    text = renderer.alert(alarm, Target("w-17", locale=locale.value)).text
    assert text.startswith(WORDING[locale].brand + title + " "), text
    assert fits_sms(text, SEGMENTS[locale]), (sms_units(text), text)
    assert renderer.facts(alarm, locale).category is alarm.category
    # the id says nothing: the same alarm under another rule's id reads exactly the same
    renamed = dataclasses.replace(alarm, rule_id="manhole-displaced", key="dev-0042/x")
    assert renderer.alert(renamed, Target("w-17", locale=locale.value)).text == text


def test_a_low_battery_on_a_manhole_is_not_an_open_manhole(renderer: NotifyRenderer) -> None:
    (alarm,) = [a for a in ALARMS if a.rule_id == "manhole-low-battery"]
    zh = renderer.alert(alarm, Target("w-17", locale="zh-CN")).text
    en = renderer.alert(alarm, Target("w-17", locale="en")).text
    assert zh.startswith("【街道大脑】井盖传感器电量低 ") and "井盖异常" not in zh
    assert en.startswith("[Street Brain] Manhole sensor battery low ") and "open" not in en
    assert str(alarm.category) == "device_fault"


def test_a_summary_carries_each_rule_words(renderer: NotifyRenderer) -> None:
    by_title = {a.title_en: a for a in ALARMS}
    alarms = [by_title["Detector battery low"], by_title["Water on the road"]]
    en = renderer.summary("w-17", alarms, "en").text
    assert en.index("Water on the road") < en.index("Detector battery low")  # flood first
    zh = renderer.summary("w-17", alarms, "zh-CN").text  # two segments, as the alerts
    assert fits_sms(zh, SEGMENTS[Locale.ZH_CN]), (sms_units(zh), zh)
    assert zh.index("路面积水") < zh.index("探测器电量低")


@pytest.mark.parametrize("locale", list(Locale))
def test_the_longest_title_rules_check_allows_still_fits(
    renderer: NotifyRenderer, locale: Locale
) -> None:
    base = ALARMS[0]
    longest = dataclasses.replace(base, title_en="W" * TITLE_EN_MAX, title_zh="字" * TITLE_ZH_MAX)
    text = renderer.alert(longest, Target("w-17", locale=locale.value)).text
    assert fits_sms(text, SEGMENTS[locale]), (sms_units(text), text)


@pytest.mark.parametrize(
    ("notice", "zh", "en"),
    [
        (Notice(NoticeKind.BRIGADE_STATUS, "思明消防", "dispatched", 360),
         "【街道大脑】消防已出动（思明消防），预计6分钟到达。报警48213",
         "[Street brain] 思明消防: brigade dispatched, ETA 6 min. Alarm 48213"),
        (Notice(NoticeKind.BRIGADE_STATUS, "思明消防", "on_scene"),
         "【街道大脑】消防已到场（思明消防）。报警48213",
         "[Street brain] 思明消防: brigade on scene. Alarm 48213"),
        (Notice(NoticeKind.BRIGADE_REQUEST, "思明消防", text="钥匙\n持有人多久到？"),
         "【街道大脑】思明消防询问：钥匙 持有人多久到？（报警48213）",
         "[Street brain] 思明消防 asks: 钥匙 持有人多久到？ (alarm 48213)"),
    ],
)  # fmt: skip
def test_a_notice_reads_in_the_workers_language_with_the_page_link(
    renderer: NotifyRenderer, notice: Notice, zh: str, en: str
) -> None:
    alarm = view("smoke-fire", "Suspected fire", "疑似火警", "fire", Notify.PAGE)
    for locale, words in ((Locale.ZH_CN, zh), (Locale.EN, en)):
        got = renderer.notice(alarm, Target("w1", (), locale.value), notice)
        assert got.text == f"{words} {got.link}"
        assert got.link.startswith("https://jd.example.cn/")


def test_a_closed_report_is_worded_for_its_reporter() -> None:
    from cloud.dispatch.texts import notice_text
    from cloud.lifecycle.model import Notice, NoticeKind

    closed = Notice(NoticeKind.REPORT_CLOSED, source="消防通道堵塞", status="real")
    zh = "【街道大脑】您上报的“消防通道堵塞”已处理完毕（已处置）。报警7"
    assert notice_text(closed, 7, zh=True) == zh
    closed = Notice(NoticeKind.REPORT_CLOSED, source="Blocked fire exit", status="false_alarm")
    assert notice_text(closed, 7, zh=False).startswith(
        '[Street brain] Your report "Blocked fire exit" is closed (false_alarm)'
    )
