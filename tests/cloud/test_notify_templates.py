"""Message texts: one SMS per locale, link and reply hint never shortened."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from cloud.dispatch.texts import SEGMENTS
from cloud.notify import (
    AlarmFacts,
    LinkSigner,
    Locale,
    TemplateError,
    fits_one_sms,
    link,
    render_alarm,
    render_summary,
    sms_encoding,
    sms_units,
)
from cloud.notify.smstext import fits_sms
from cloud.notify.templates import WORDING
from rules import Category

RAISED = datetime(2025, 3, 14, 6, 0)
TOKEN = LinkSigner("0123456789abcdef-link-secret").make(
    "17", "48213", datetime(2025, 3, 14, 18, 0, tzinfo=UTC)
)
ZH = AlarmFacts("疑似火警", "smk-0042", "smoke", "叶厝社区", "包饼店", RAISED, Category.FIRE)
EN = AlarmFacts(
    "Suspected fire", "smk-0042", "smoke", "Yecuo Cmty", "Bakery", RAISED, Category.FIRE
)
HINT = {Locale.ZH_CN: "回复1接单 2误报", Locale.EN: "Reply 1=take 2=false"}


def test_zh_example_with_a_short_link_keeps_every_field() -> None:
    text = render_alarm(ZH, Locale.ZH_CN, "https://g.cn/m/AbC")
    assert (
        text
        == "【街道大脑】疑似火警 叶厝社区 包饼店 烟感 smk-0042 06:00 回复1接单 2误报 https://g.cn/m/AbC"
    )
    assert sms_encoding(text) == "ucs2"
    assert sms_units(text) <= 70


def test_en_example_keeps_every_field_within_160_gsm() -> None:
    url = link("https://jd.example.org", TOKEN)
    text = render_alarm(EN, Locale.EN, url)
    assert text == (
        "[Street Brain] Suspected fire Yecuo Cmty Bakery smoke smk-0042 06:00 "
        f"Reply 1=take 2=false {url}"
    )
    assert sms_encoding(text) == "gsm7"
    assert sms_units(text) <= 160


@pytest.mark.parametrize("base", ["https://g.cn", "https://jd.example.cn", "http://127.0.0.1:8080"])
def test_zh_with_a_real_token_shrinks_fields_never_link_or_hint(base: str) -> None:
    url = link(base, TOKEN)
    text = render_alarm(ZH, Locale.ZH_CN, url)
    assert fits_one_sms(text), (sms_units(text), text)
    assert text.startswith("【街道大脑】疑似火警")
    assert text.endswith(f"{HINT[Locale.ZH_CN]} {url}")


def test_zh_shrinks_in_order_device_label_then_time() -> None:
    url = link("https://g.cn", TOKEN)  # 37 characters leave room for part of the facts
    text = render_alarm(ZH, Locale.ZH_CN, url)
    assert "烟感" not in text
    assert "06:00" not in text
    assert "包饼店" in text or "包饼" in text


LONG_NAMES = [
    AlarmFacts(
        "疑似火警",
        "smk-0042",
        "smoke",
        "叶厝社区第三网格东片区",
        "老王家祖传手工包子饼店（总店）",
        RAISED,
    ),
    AlarmFacts("路面严重积水", "wl-05", "water_level", "叶厝社区", "环城南路下穿隧道", RAISED),
    AlarmFacts(
        "电动车反复进入电梯", "eb-0901-02", "ebike_blocker", "滨江社区", "滨江花园9栋2号梯", RAISED
    ),
    AlarmFacts("井盖传感器电量低", "x" * 40, "unheard_device", "c" * 30, "p" * 60, RAISED),
]
# the same alarms as an English-speaking worker gets them (titles are per locale, names not);
# a Chinese text with a rule's title and a signed link takes two segments, an English one
EN_TITLES = [
    "Suspected fire",
    "Road flooded",
    "Repeated e-bike entries",
    "Manhole sensor battery low",
]


@pytest.mark.parametrize("locale", list(Locale))
@pytest.mark.parametrize("n", range(len(LONG_NAMES)))
def test_always_within_the_locale_segments(n: int, locale: Locale) -> None:
    facts = LONG_NAMES[n]
    if locale is Locale.EN:
        facts = dataclasses.replace(facts, title=EN_TITLES[n])
    url = link("https://jd.example.cn", TOKEN)
    text = render_alarm(facts, locale, url, segments=SEGMENTS[locale])
    assert fits_sms(text, SEGMENTS[locale]), (sms_units(text), text)
    assert text.startswith(WORDING[locale].brand + facts.title)
    assert text.endswith(f"{HINT[locale]} {url}")


def test_en_with_chinese_names_still_fits() -> None:
    # With the names the text is UCS-2 (70); dropping them brings it back to GSM-7 (160).
    url = link("https://g.cn", TOKEN)
    text = render_alarm(dataclasses.replace(ZH, title="Suspected fire"), Locale.EN, url)
    assert fits_one_sms(text), (sms_units(text), text)
    assert text.endswith(f"Reply 1=take 2=false {url}")
    assert sms_encoding(text) == "gsm7"


def test_a_blank_title_reads_as_the_generic_word_never_a_code() -> None:
    facts = AlarmFacts(" ", "d-1", "new_device", "叶厝社区", "包饼店", RAISED)
    assert render_alarm(facts, Locale.ZH_CN, "https://g.cn/m/A").startswith(
        "【街道大脑】警情 叶厝社区"
    )
    assert render_alarm(facts, Locale.EN, "https://g.cn/m/A").startswith("[Street Brain] Alarm ")


def test_link_too_long_for_one_sms_is_an_error_naming_the_cause() -> None:
    url = link("https://a-very-long-host-name.street-office.example.gov.cn", TOKEN)
    with pytest.raises(TemplateError, match="shorter link base URL"):
        render_alarm(ZH, Locale.ZH_CN, url)


def test_whitespace_in_names_is_collapsed() -> None:
    facts = AlarmFacts("疑似火警", "smk-1", "smoke", "叶厝\n社区", "包  饼店", RAISED)
    assert "叶厝 社区 包 饼店" in render_alarm(facts, Locale.ZH_CN, "https://g.cn/m/A")


def test_summary_lists_what_fits_and_says_there_is_more() -> None:
    items = [
        AlarmFacts(
            "疑似火警",
            f"smk-{i:04}",
            "smoke",
            "叶厝社区",
            f"商铺{i}号",
            RAISED + timedelta(minutes=i),
        )
        for i in range(12)
    ]
    url = link("https://g.cn", TOKEN)
    for locale in Locale:
        text = render_summary(items, locale, url)
        assert fits_one_sms(text), (sms_units(text), text)
        assert "12" in text
        assert text.endswith(url)
    zh = render_summary(items, Locale.ZH_CN, url)
    assert zh.startswith("【街道大脑】您的网格另有12条警情:")
    assert f"等 {url}" in zh


def test_summary_of_few_lists_all() -> None:
    flood = AlarmFacts(
        "积水预警", "wl-05", "water_level", "叶厝社区", "隧道", RAISED, Category.FLOOD
    )
    items = [ZH, flood]
    text = render_summary([EN], Locale.EN, "https://g.cn/m/A")
    assert (
        text == "[Street Brain] 1 more alarms in your grids: Suspected fire Bakery https://g.cn/m/A"
    )
    zh = render_summary(items, Locale.ZH_CN, "https://g.cn/m/A")
    assert zh == "【街道大脑】您的网格另有2条警情: 疑似火警 包饼店；积水预警 隧道 https://g.cn/m/A"


def test_a_summary_names_the_most_urgent_categories_first() -> None:
    battery = AlarmFacts(
        "探测器电量低", "smk-7", "smoke", "叶厝社区", "楼道", RAISED, Category.DEVICE_FAULT
    )
    older = AlarmFacts("警情", "x-1", "", "", "旧", RAISED)  # raised before categories: last
    flood = AlarmFacts(
        "积水预警", "wl-05", "water_level", "叶厝社区", "隧道", RAISED, Category.FLOOD
    )
    zh = render_summary([older, battery, flood, ZH], Locale.ZH_CN, "https://g.cn/m/A")
    assert zh == (
        "【街道大脑】您的网格另有4条警情: "
        "疑似火警 包饼店；积水预警 隧道；探测器电量低 楼道；警情 旧 https://g.cn/m/A"
    )


@pytest.mark.parametrize(
    ("text", "encoding", "units"),
    [
        ("hello", "gsm7", 5),
        ("[x]", "gsm7", 5),  # brackets are in the extension table: two septets each
        ("€5 {a}", "gsm7", 9),
        ("Zürich à", "gsm7", 8),
        ("疑似火警", "ucs2", 4),
        ("fire 🔥", "ucs2", 7),  # outside the BMP: a surrogate pair
        ("naïve", "ucs2", 5),  # ï is not in GSM 03.38
    ],
)
def test_sms_units(text: str, encoding: str, units: int) -> None:
    assert sms_encoding(text) == encoding
    assert sms_units(text) == units


def test_limits_are_inclusive() -> None:
    assert fits_one_sms("a" * 160)
    assert not fits_one_sms("a" * 161)
    assert fits_one_sms("警" * 70)
    assert not fits_one_sms("警" * 71)
    assert not fits_one_sms("[" * 81)
