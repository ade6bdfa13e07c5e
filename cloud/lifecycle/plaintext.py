"""A plain renderer until the notify templates and signed links are wired in."""

from __future__ import annotations

import time
from collections.abc import Sequence

from cloud.lifecycle.model import AlarmView, Notice, NoticeKind, Rendered, Target

SUMMARY_ITEMS = 3  # alarms named in a summary; the rest are counted (one SMS)


class PlainRenderer:
    """Short zh-CN / en texts with an unsigned link under *base_url*."""

    def __init__(self, base_url: str = "http://127.0.0.1:8080") -> None:
        self.base_url = base_url.rstrip("/")

    def alert(self, alarm: AlarmView, target: Target) -> Rendered:
        at = time.strftime("%H:%M", time.localtime(alarm.raised_at))
        link = f"{self.base_url}/a/{alarm.alarm_id}"
        what = alarm.device or alarm.gateway
        if target.locale.startswith("zh"):
            text = f"【街道大脑】{alarm.title_zh} {what} {at} 回复1接单 2误报 {link}"
        else:
            text = f"[Street brain] {alarm.title_en} {what} {at} reply 1 take, 2 false {link}"
        return Rendered(text, link)

    def summary(self, worker_id: str, alarms: Sequence[AlarmView], locale: str) -> Rendered:
        link = f"{self.base_url}/w/{worker_id}"
        zh = locale.startswith("zh")
        names = [
            f"{a.device or a.gateway} {a.title_zh if zh else a.title_en}"
            for a in alarms[:SUMMARY_ITEMS]
        ]
        more = len(alarms) - len(names)
        if zh:
            tail = f" 等{len(alarms)}条" if more else ""
            text = f"【街道大脑】又有{len(alarms)}条告警: {', '.join(names)}{tail} {link}"
        else:
            tail = f" and {more} more" if more else ""
            text = f"[Street brain] {len(alarms)} more alarms: {', '.join(names)}{tail} {link}"
        return Rendered(text, link)

    def notice(self, alarm: AlarmView, target: Target, notice: Notice) -> Rendered:
        link = f"{self.base_url}/a/{alarm.alarm_id}"
        prefix = "【街道大脑】" if target.locale.startswith("zh") else "[Street brain] "
        if notice.kind is NoticeKind.REPORT_CLOSED:
            words = f'Your report "{notice.source}" is closed ({notice.status})'
            return Rendered(f"{prefix}{words} #{alarm.alarm_id} {link}", link)
        eta = f" ETA {round(notice.eta_s / 60)} min" if notice.eta_s is not None else ""
        words = " ".join(w for w in (notice.status, notice.text) if w)
        return Rendered(f"{prefix}{notice.source}: {words}{eta} #{alarm.alarm_id} {link}", link)
