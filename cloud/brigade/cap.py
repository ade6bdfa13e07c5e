"""OASIS CAP 1.2 messages for brigades that take CAP, built with cap-tools (xsdata models of
the official schema) rather than string templates.

- ``identifier`` is the message's idempotency key (stable per alarm and step); ``sender`` is
  this installation's (``brigade.sender``); ``sent`` is when the step happened. So a retry
  is the same message, and an Update's ``references`` ("sender,identifier,sent") names the
  original Alert exactly.
- ``msgType`` Alert on raise, Update on each later step, Cancel on a false alarm;
  ``status`` Actual; ``scope`` Private, addressed to the brigade.
- Two ``info`` blocks, zh-CN and en-US: category Fire; certainty Possible while unverified,
  Observed once a second detector or the grid worker on site confirmed it, Unlikely when it
  was a false alarm (the Cancel); urgency Immediate (Past once closed).
- ``area``: the address, a circle (lat,lon radius-km) when the place is surveyed, and the
  community and grid as geocodes. ``parameter``s carry what a crew needs (``facts_of`` reads
  them back).
"""

from __future__ import annotations

import re

from cap_tools import (
    Area,
    Category,
    Certainty,
    Geocode,
    Info,
    Parameter,
    Scope,
    Severity,
    Status,
    Urgency,
    Value,
    ValueName,
)
from cap_tools.models import Alert, MsgType, Reference
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig
from xsdata.models.datatype import XmlDateTime

from cloud.brigade.body import Message, iso, webhook_body
from cloud.brigade.facts import BrigadeAlarm, Verification
from cloud.brigade.feed import message_id
from cloud.lifecycle.model import FeedStep

CAP_CONTENT_TYPE = "application/cap+xml"
# Characters XML 1.0 cannot carry, escaped or not (e.g. a spreadsheet's vertical tab in an
# address): written raw they make the whole message unreadable, so each becomes a space.
NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
CIRCLE_RADIUS_KM = 0.1
SEVERITY = {"critical": Severity.EXTREME, "danger": Severity.SEVERE,
            "warning": Severity.MODERATE, "info": Severity.MINOR}  # fmt: skip
CERTAINTY = {
    Verification.UNVERIFIED: Certainty.POSSIBLE,
    Verification.SECOND_DETECTOR: Certainty.OBSERVED,
    Verification.WORKER_ON_SITE: Certainty.OBSERVED,
    Verification.FALSE_ALARM: Certainty.UNLIKELY,
}
VERIFICATION_TEXT = {
    Verification.UNVERIFIED: ("未核实", "unverified"),
    Verification.SECOND_DETECTOR: ("第二个探测器确认", "confirmed by a second detector"),
    Verification.WORKER_ON_SITE: ("网格员现场确认", "confirmed by the grid worker on site"),
    Verification.FALSE_ALARM: ("误报", "false alarm"),
}


def cap_alert(msg: Message, sender: str) -> Alert:
    """The CAP 1.2 alert of one queued message."""
    body = webhook_body(msg)
    facts = body.alarm
    alert = Alert(
        identifier=msg.message_id, sender=sender, sent=XmlDateTime.from_string(body.sent),
        status=Status.ACTUAL, msg_type=MsgType(body.msg_type.value), scope=Scope.PRIVATE,
        addresses=msg.brigade_id, incidents=f"ga-{msg.alarm_id}",
        infos=[_info(facts, msg, zh=True), _info(facts, msg, zh=False)],
    )  # fmt: skip
    if msg.step is not FeedStep.RAISED:
        raised = message_id(msg.alarm_id, FeedStep.RAISED)
        alert.references_from_list(
            [Reference(sender, raised, XmlDateTime.from_string(iso(msg.alert_created_at)))]
        )
    return alert


def _info(facts: BrigadeAlarm, msg: Message, *, zh: bool) -> Info:
    closed = msg.step in {FeedStep.FALSE_ALARM, FeedStep.RESOLVED}
    p = facts.place
    where = " ".join(x for x in (p.address, p.building, f"{p.floor}F" if p.floor else "") if x)
    verification = VERIFICATION_TEXT[facts.verification][0 if zh else 1]
    title = facts.title_zh if zh else facts.title_en
    info = Info(
        language="zh-CN" if zh else "en-US", categories=[Category.FIRE],
        event="火警" if zh else "Fire alarm",
        urgency=Urgency.PAST if closed else Urgency.IMMEDIATE,
        severity=SEVERITY.get(facts.severity, Severity.UNKNOWN),
        certainty=CERTAINTY[facts.verification], sender_name="gridalarm",
        headline=f"{title}: {where}"[:160],
        description=f"{title}. {where}. {verification}.",
        areas=[_area(facts)],
    )  # fmt: skip
    info.parameters = [Parameter(ValueName(k), Value(v)) for k, v in parameters(facts, msg)]
    return info


def _area(facts: BrigadeAlarm) -> Area:
    p = facts.place
    area = Area(area_desc=" ".join(x for x in (p.community_name, p.address) if x) or p.grid)
    if p.lat is not None and p.lon is not None:
        area.circles = [f"{p.lat:.6f},{p.lon:.6f} {CIRCLE_RADIUS_KM}"]
    area.geocodes = [
        Geocode(ValueName(k), Value(v)) for k, v in (("community", p.community), ("grid", p.grid))
        if v
    ]  # fmt: skip
    return area


def parameters(facts: BrigadeAlarm, msg: Message) -> list[tuple[str, str]]:
    """The facts a crew needs as CAP (valueName, value) pairs; empty values left out."""
    p, d, r, o = facts.place, facts.detector, facts.responder, facts.owner
    pairs = [
        ("alarm_id", str(facts.alarm_id)), ("step", msg.step.value),
        ("verification", facts.verification.value), ("state", facts.state.value),
        ("outcome", facts.outcome.value if facts.outcome else ""),
        ("address", p.address), ("building", p.building), ("floor", p.floor),
        ("community", p.community), ("grid", p.grid),
        ("device", d.device or ""), ("device_type", d.type),
        ("false_alarms_90d", str(d.false_alarms_90d)),
        ("responder_name", r.name if r else ""), ("responder_phone", r.phone if r else ""),
        ("responder_status", r.status if r else ""),
        ("owner_name", o.name if o else ""), ("owner_phone", o.phone if o else ""),
    ]  # fmt: skip
    return [(k, v) for k, v in pairs if v]


def encode_cap(msg: Message, sender: str) -> bytes:
    """The CAP 1.2 XML of *msg* (UTF-8)."""
    config = SerializerConfig(indent="  ", xml_declaration=True, encoding="UTF-8")
    xml = XmlSerializer(config=config).render(
        cap_alert(msg, sender), ns_map={None: "urn:oasis:names:tc:emergency:cap:1.2"}
    )
    return NOT_XML_CHAR.sub(" ", xml).encode()


def parse_cap(xml: bytes) -> Alert:
    """A CAP 1.2 alert from XML (cap-tools' models)."""
    return XmlParser().from_bytes(xml, Alert)


def facts_of(alert: Alert, language: str = "en-US") -> dict[str, str]:
    """The parameters of the *language* info block, as a dict (the reverse of ``parameters``)."""
    for info in alert.infos:
        if info.get_language() == language:
            return dict(info.parameters_to_dict())
    return {}
