"""The lifecycle's Renderer over the notify templates: zh-CN / en texts with signed links."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cloud.lifecycle import AlarmView, Rendered, Target
from cloud.lifecycle.model import Notice, NoticeKind
from cloud.notify import LinkSigner, Locale, link
from cloud.notify.templates import AlarmFacts, render_alarm, render_summary
from cloud.registry.model import Registry
from rules.devices import DeviceInfo

DISTRICT_TZ = ZoneInfo("Asia/Shanghai")
DEVICE_KINDS = {
    "smoke": "smoke",
    "ebike": "ebike_blocker",
    "manhole": "manhole",
    "flood": "water_level",
}
# A Chinese alarm text with place, device id and the signed link needs two SMS segments (70
# UCS-2 units each are too few); carriers join them into one message on the phone.
SEGMENTS = {Locale.ZH_CN: 2, Locale.EN: 1}
# the fire brigade's statuses as a grid worker reads them
BRIGADE_STATUS = {
    "received": ("消防已接警", "brigade received the alarm"),
    "dispatched": ("消防已出动", "brigade dispatched"),
    "en_route": ("消防在途", "brigade en route"),
    "on_scene": ("消防已到场", "brigade on scene"),
    "closed": ("消防已结案", "brigade closed the incident"),
}
REPORT_OUTCOME_ZH = {"real": "已处置", "false_alarm": "经核实无隐患", "device_fault": "设备故障",
                     "test": "测试"}  # fmt: skip
NOTICE_TEXT_MAX = 120  # a brigade's own words, cut to keep the notice one message


class NotifyRenderer:
    """Renders alerts and summaries, each with a link signed for that worker and alarm."""

    def __init__(
        self,
        signer: LinkSigner,
        base_url: str,
        registry: Registry,
        devices: Mapping[str, DeviceInfo],
        *,
        link_ttl_s: float = 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._signer = signer
        self._base = base_url
        self._devices = devices
        self._places = {loc.device: loc for loc in registry.locations}
        self._communities = {c.id: c for c in registry.communities}
        self._ttl = link_ttl_s
        self._clock = clock

    def link_for(self, worker_id: str, alarm_id: int) -> str:
        expires = datetime.fromtimestamp(self._clock() + self._ttl, UTC)
        return link(self._base, self._signer.make(worker_id, str(alarm_id), expires))

    def facts(self, alarm: AlarmView, locale: Locale) -> AlarmFacts:
        device = self._devices.get(alarm.device or "")
        place = self._places.get(alarm.device or "")
        community = self._communities.get(device.community) if device is not None else None
        name = (
            (community.name_zh if locale is Locale.ZH_CN else community.name_en)
            if community
            else ""
        )
        return AlarmFacts(
            # the rule's own words, stored with the alarm at raise; never read from its id
            title=alarm.title_zh if locale is Locale.ZH_CN else alarm.title_en,
            category=alarm.category,
            device_id=alarm.device or alarm.gateway,
            device_kind=DEVICE_KINDS.get(device.type, "") if device is not None else "",
            community=name,
            place=(place.owner or place.building) if place is not None else "",
            raised_at=datetime.fromtimestamp(alarm.raised_at, DISTRICT_TZ),
        )

    def alert(self, alarm: AlarmView, target: Target) -> Rendered:
        locale = Locale(target.locale) if target.locale in ("zh-CN", "en") else Locale.ZH_CN
        url = self.link_for(target.worker_id, alarm.alarm_id)
        text = render_alarm(self.facts(alarm, locale), locale, url, segments=SEGMENTS[locale])
        return Rendered(text, url)

    def summary(self, worker_id: str, alarms: Sequence[AlarmView], locale: str) -> Rendered:
        loc = Locale(locale) if locale in ("zh-CN", "en") else Locale.ZH_CN
        url = self.link_for(worker_id, alarms[0].alarm_id) if alarms else self._base
        facts = [self.facts(a, loc) for a in alarms]
        return Rendered(render_summary(facts, loc, url, segments=SEGMENTS[loc]), url)

    def notice(self, alarm: AlarmView, target: Target, notice: Notice) -> Rendered:
        zh = target.locale != Locale.EN.value
        url = self.link_for(target.worker_id, alarm.alarm_id)
        return Rendered(f"{notice_text(notice, alarm.alarm_id, zh=zh)} {url}", url)


def notice_text(notice: Notice, alarm_id: int, *, zh: bool) -> str:
    """A notice's words: 【街道大脑】消防已出动（思明消防），预计6分钟到达。报警41 / en."""
    own = " ".join(notice.text.split())[:NOTICE_TEXT_MAX]
    if notice.kind is NoticeKind.REPORT_CLOSED:
        if zh:
            done = REPORT_OUTCOME_ZH.get(notice.status, notice.status)
            return f"【街道大脑】您上报的“{notice.source}”已处理完毕（{done}）。报警{alarm_id}"
        return (
            f'[Street brain] Your report "{notice.source}" is closed ({notice.status}). '
            f"Alarm {alarm_id}"
        )
    if notice.kind is NoticeKind.BRIGADE_REQUEST:
        if zh:
            return f"【街道大脑】{notice.source}询问：{own}（报警{alarm_id}）"
        return f"[Street brain] {notice.source} asks: {own} (alarm {alarm_id})"
    said = BRIGADE_STATUS.get(notice.status, (notice.status, notice.status))
    minutes = None if notice.eta_s is None else max(1, round(notice.eta_s / 60))
    if zh:
        eta = f"，预计{minutes}分钟到达" if minutes is not None else ""
        return f"【街道大脑】{said[0]}（{notice.source}）{eta}。报警{alarm_id}"
    eta = f", ETA {minutes} min" if minutes is not None else ""
    return f"[Street brain] {notice.source}: {said[1]}{eta}. Alarm {alarm_id}"
