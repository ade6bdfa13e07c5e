"""CAP 1.2 messages built with cap-tools, read back with cap-tools to the same facts."""

from __future__ import annotations

from pathlib import Path

import pytest
from cap_tools import Category, Certainty, Scope, Status, Urgency
from cap_tools.models import MsgType

from cloud.brigade import body
from cloud.brigade.body import Message, encode_json
from cloud.brigade.cap import encode_cap, facts_of, parameters, parse_cap
from cloud.brigade.facts import (
    BrigadeAlarm,
    Contact,
    Detector,
    Place,
    Responder,
    Verification,
    snapshot,
)
from cloud.lifecycle.model import FeedStep, Outcome, State

T0 = 1_767_225_600.0  # 2026-01-01T08:00:00+08:00
SENDER = "gridalarm@street.example"


def facts(verification: Verification, *, lat: float | None = 24.45) -> BrigadeAlarm:
    return BrigadeAlarm(
        alarm_id=7, rule_id="smoke-fire", category="fire", severity="critical",
        title_zh="烟感火警", title_en="Smoke detector fire alarm", state=State.ACKNOWLEDGED,
        outcome=Outcome.FALSE_ALARM if verification is Verification.FALSE_ALARM else None,
        verification=verification, raised_at=T0, resolved_at=None,
        place=Place(address="思明路 1 号", building="7号楼", floor="3", community="c-east",
                    community_name="东社区", grid="g-east-1", grid_name="东一网格", lat=lat,
                    lon=118.08),
        detector=Detector(device="smk-1", type="smoke", gateway="gw-1", false_alarms_90d=2),
        responder=Responder(id="w1", name="李网格", phone="+8613900000001", status="en_route",
                            lat=None, lon=None, position_at=None),
        owner=Contact(name="早餐店 王", phone="+8613800000001"),
    )  # fmt: skip


def message(step: FeedStep, alarm: BrigadeAlarm, at: float = T0 + 30) -> Message:
    return Message(3, "east-fire", 7, step, f"ga-7-{step.value}", snapshot(alarm), at, T0, 1)


def test_the_alert_reads_back_as_the_same_facts():
    alarm = facts(Verification.UNVERIFIED)
    msg = message(FeedStep.RAISED, alarm, at=T0)
    alert = parse_cap(encode_cap(msg, SENDER))
    assert (alert.identifier, alert.sender, str(alert.sent)) == (
        "ga-7-raised",
        SENDER,
        "2026-01-01T08:00:00+08:00",
    )
    assert (alert.status, alert.msg_type, alert.scope) == (Status.ACTUAL, MsgType.ALERT,
                                                          Scope.PRIVATE)  # fmt: skip
    assert alert.addresses_to_list() == ["east-fire"] and alert.references is None
    assert [i.get_language() for i in alert.infos] == ["zh-CN", "en-US"]
    for info in alert.infos:
        assert info.categories == [Category.FIRE] and info.certainty is Certainty.POSSIBLE
        assert info.urgency is Urgency.IMMEDIATE
        assert info.areas[0].circles == ["24.450000,118.080000 0.1"]
    assert facts_of(alert) == dict(parameters(alarm, msg)) == facts_of(alert, "zh-CN")
    got = facts_of(alert)
    assert (got["address"], got["floor"], got["owner_phone"], got["responder_phone"]) == (
        "思明路 1 号",
        "3",
        "+8613800000001",
        "+8613900000001",
    )
    assert got["verification"] == "unverified" and got["false_alarms_90d"] == "2"


@pytest.mark.parametrize(
    ("step", "verification", "kind", "certainty"),
    [
        (FeedStep.CONFIRMED, Verification.SECOND_DETECTOR, MsgType.UPDATE, Certainty.OBSERVED),
        (FeedStep.VERIFIED, Verification.WORKER_ON_SITE, MsgType.UPDATE, Certainty.OBSERVED),
        (FeedStep.FALSE_ALARM, Verification.FALSE_ALARM, MsgType.CANCEL, Certainty.UNLIKELY),
    ],
)
def test_later_steps_reference_the_original_alert(
    step: FeedStep, verification: Verification, kind: MsgType, certainty: Certainty
):
    alert = parse_cap(encode_cap(message(step, facts(verification)), SENDER))
    assert alert.msg_type is kind and alert.identifier == f"ga-7-{step.value}"
    (ref,) = alert.references_to_list()
    assert (ref.sender, ref.identifier, str(ref.sent)) == (
        SENDER,
        "ga-7-raised",
        "2026-01-01T08:00:00+08:00",
    )
    assert {i.certainty for i in alert.infos} == {certainty}
    assert facts_of(alert)["verification"] == verification.value


def test_no_circle_without_coordinates_and_the_same_bytes_on_every_retry():
    msg = message(FeedStep.RAISED, facts(Verification.UNVERIFIED, lat=None))
    xml = encode_cap(msg, SENDER)
    assert parse_cap(xml).infos[0].areas[0].circles == []
    assert encode_cap(msg, SENDER) == xml and encode_json(msg) == encode_json(msg)


def test_the_documented_json_schema_is_current():
    shipped = Path(body.__file__).with_name("webhook.schema.json").read_text(encoding="utf-8")
    assert shipped == body.schema(), (
        "run: python -m cloud.brigade.body > cloud/brigade/webhook.schema.json"
    )
