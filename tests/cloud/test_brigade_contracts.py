"""What we send brigades, checked by validators nobody here wrote: every CAP message against the
official OASIS CAP 1.2 XSD (tests/data/CAP-v1.2.xsd, with xmlschema) and the CAP 1.2 rules the
XSD cannot state; every JSON body against the shipped webhook.schema.json, and the brigade
API's answers against /openapi.json's component schemas (with jsonschema). The messages are the
real sender's, posted to stand-in brigades by the real lifecycle's steps."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pydantic
import pytest
import xmlschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from cloud.brigade import body
from cloud.brigade.cap import encode_cap
from cloud.brigade.directory import Brigade, WebhookFormat, add_brigade
from cloud.brigade.facts import Verification
from cloud.brigade.feed import BrigadeFeed, create_feed_tables
from cloud.config import BrigadeConfig
from cloud.lifecycle import Lifecycle, Outcome, PlainRenderer
from cloud.lifecycle.model import FeedStep
from cloud.lifecycle.steps import StepContext
from cloud.lifecycle.tables import open_lifecycle_db
from cloud.lifecycle.updates import key_holder_reached
from rigs.standins.brigade import BrigadeStandin, Processed
from tests.cloud.test_brigade_cap import SENDER, facts, message
from tests.cloud.test_brigade_sender import running
from tests.cloud.test_brigade_support import V1, running_cloud, seed_district
from tests.cloud.test_lifecycle_fixtures import (
    Clock,
    RankedDispatcher,
    alarm_id,
    change,
    commit,
    config,
)

XSD = Path(__file__).parents[1] / "data" / "CAP-v1.2.xsd"
OASIS_XSD_SHA256 = "b7798ef25868b068c97b268bda02d067c7d4ba9373adc5638bf37105804ee723"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
FAST = BrigadeConfig(backoff_base_s=0.05, backoff_max_s=0.2, timeout_s=2.0, sender=SENDER)

# CAP 1.2 (OASIS Standard, 2010), section 3.2: what the schema's xs:string cannot say.
NAME = re.compile(r"[^\s,<&]+")  # identifier, sender: "MUST NOT include spaces, commas or <, &"
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d")  # offset, no 'Z', no fraction
NUMBER = r"[-+]?\d+(?:\.\d+)?"
PAIR = re.compile(rf"({NUMBER}),({NUMBER})")  # WGS 84 "lat,lon"
CIRCLE = re.compile(rf"(\S+) ({NUMBER})")  # "lat,lon radius-km"


def point_breaches(pair: str) -> list[str]:
    m = PAIR.fullmatch(pair)
    if m is None:
        return [f"{pair!r} is not a 'lat,lon' pair"]
    lat, lon = float(m[1]), float(m[2])
    return [] if -90 <= lat <= 90 and -180 <= lon <= 180 else [f"{pair!r} is off the globe"]


def area_breaches(area: ET.Element) -> list[str]:
    found = []
    for circle in (c.text or "" for c in area.iter(f"{CAP}circle")):
        m = CIRCLE.fullmatch(circle)
        found += point_breaches(m[1]) if m else [f"circle {circle!r} is not 'lat,lon radius'"]
    for polygon in (p.text or "" for p in area.iter(f"{CAP}polygon")):
        pairs = polygon.split()
        for pair in pairs:
            found += point_breaches(pair)
        if len(pairs) < 4 or pairs[0] != pairs[-1]:
            found.append(f"polygon {polygon!r}: not closed, or fewer than 4 pairs")
    return found


def cap_breaches(xml: bytes) -> list[str]:
    """Where *xml* breaks a CAP 1.2 rule that the XSD leaves to the text."""
    alert = ET.fromstring(xml)
    text = {child.tag.removeprefix(CAP): child.text or "" for child in alert}
    found = [f"{k} {text[k]!r}" for k in ("identifier", "sender") if not NAME.fullmatch(text[k])]
    times = [text["sent"]] + [t.text or "" for n in ("effective", "onset", "expires")
                              for t in alert.iter(f"{CAP}{n}")]  # fmt: skip
    found += [f"time {t!r}" for t in times if not TIME.fullmatch(t)]
    for ref in text.get("references", "").split():
        parts = ref.split(",")
        if len(parts) != 3 or not all(NAME.fullmatch(p) for p in parts[:2]):
            found.append(f"reference {ref!r} is not 'sender,identifier,sent'")
        elif not TIME.fullmatch(parts[2]):
            found.append(f"reference {ref!r}: its sent {parts[2]!r}")
    if text["scope"] == "Private" and not text.get("addresses", "").strip():
        found.append("scope Private without addresses")
    if any(" " in a or '"' in a for a in text.get("addresses", "").split()):
        found.append(f"addresses {text['addresses']!r}: quoting")  # none of ours needs quotes
    for area in alert.iter(f"{CAP}area"):
        found += area_breaches(area)
    return found


@cache
def cap_schema() -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(XSD)


@cache
def webhook_schema() -> jsonschema.protocols.Validator:
    schema = json.loads(Path(body.__file__).with_name("webhook.schema.json").read_text("utf-8"))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def assert_valid_cap(xml: bytes) -> None:
    errors = [str(e) for e in cap_schema().iter_errors(xml.decode())]
    assert errors == [], f"not valid CAP 1.2 (OASIS XSD):\n{errors[0]}\n{xml.decode()}"
    assert cap_breaches(xml) == [], xml.decode()


def assert_valid_json(data: Any) -> None:
    errors = [f"{e.json_path}: {e.message}" for e in webhook_schema().iter_errors(data)]
    assert errors == [], errors
    assert dt.datetime.fromisoformat(data["sent"]).utcoffset() is not None


def test_the_xsd_is_the_oasis_one_unmodified_but_for_its_header_comment():
    raw = XSD.read_bytes()
    start = raw.index(b"<!-- Test data, not ours")
    end = raw.index(b"-->\n", start) + 4
    assert hashlib.sha256(raw[:start] + raw[end:]).hexdigest() == OASIS_XSD_SHA256
    assert cap_schema().target_namespace == "urn:oasis:names:tc:emergency:cap:1.2"


def test_the_validators_refuse_what_breaks_cap():
    xml = encode_cap(message(FeedStep.CONFIRMED, facts(Verification.SECOND_DETECTOR)), SENDER)
    assert_valid_cap(xml)
    for good, bad in ((b"+08:00</sent>", b"Z</sent>"), (b"<scope>Private", b"<scope>Secret")):
        assert not cap_schema().is_valid(xml.replace(good, bad, 1).decode())
    wrong = xml.replace(b"0.1</circle>", b"</circle>").replace(b"ga-7-confirmed", b"ga 7", 1)
    wrong = wrong.replace(b"</areaDesc>", b"</areaDesc><polygon>1,2 3,4 5,6</polygon>")
    assert cap_schema().is_valid(wrong.decode())  # the XSD says nothing of these
    assert len(set(cap_breaches(wrong))) == 3  # each twice: in the zh-CN and the en-US info
    ring = b"<polygon>24.4,118.0 24.5,118.0 24.5,118.1 24.4,118.0</polygon>"
    assert cap_breaches(xml.replace(b"</areaDesc>", b"</areaDesc>" + ring)) == []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"message_id": 7}, webhook_schema().schema)


@pytest.mark.parametrize("sender", ["street fire desk", "gridalarm,east", "a<b", "a&b", ""])
def test_a_sender_cap_forbids_is_refused_when_the_config_loads(sender: str):
    msg = message(FeedStep.CONFIRMED, facts(Verification.SECOND_DETECTOR))
    assert cap_breaches(encode_cap(msg, sender)) != []  # its Updates' references would break
    with pytest.raises(pydantic.ValidationError, match="sender"):
        BrigadeConfig(sender=sender)


@pytest.mark.parametrize("severity", ["critical", "danger", "warning", "info", "unheard-of"])
@pytest.mark.parametrize("lat", [24.45, None])
def test_every_severity_with_and_without_a_surveyed_place(severity: str, lat: float | None):
    alarm = facts(Verification.UNVERIFIED, lat=lat).model_copy(update={"severity": severity})
    for step in (FeedStep.RAISED, FeedStep.RESOLVED):
        assert_valid_cap(encode_cap(message(step, alarm), SENDER))
        assert_valid_json(json.loads(body.encode_json(message(step, alarm))))


def test_text_with_characters_xml_cannot_carry_still_makes_valid_cap():
    """A registry's address may hold a control character (a spreadsheet's vertical tab):
    XML 1.0 has no way to write one, so the CAP message has a space in its place."""
    alarm = facts(Verification.UNVERIFIED)
    place = alarm.place.model_copy(update={"address": "思明路\x0b1 号\x00", "building": "<&]]>"})
    msg = message(FeedStep.RAISED, alarm.model_copy(update={"place": place}))
    xml = encode_cap(msg, SENDER)
    assert_valid_cap(xml)
    assert "<value>思明路 1 号 </value>" in xml.decode() and b"&lt;&amp;]]&gt;" in xml
    assert_valid_json(json.loads(body.encode_json(msg)))


# -- every step as the real sender posts it -------------------------------------------------

STEPS = [  # per alarm: every step; a false alarm; a fire at a place with no coordinates
    ["raised", "confirmed", "acknowledged", "on_site", "key_holder", "verified", "resolved"],
    ["raised", "false_alarm"],
    ["raised"],
]
MSG_TYPE = {"raised": "Alert", "false_alarm": "Cancel"}  # the others are Updates


def by_alarm(got: list[Processed]) -> list[list[Processed]]:
    """What the stand-in got, per alarm (oldest first), in the order it arrived."""
    alarms: dict[int, list[Processed]] = {}
    for p in got:
        alarms.setdefault(int(p.key.split("-")[1]), []).append(p)
    return [alarms[a] for a in sorted(alarms)]


@pytest.fixture
def standins() -> Iterator[dict[WebhookFormat, BrigadeStandin]]:
    with BrigadeStandin() as as_json, BrigadeStandin() as as_cap:
        yield {WebhookFormat.JSON: as_json, WebhookFormat.CAP: as_cap}


def every_step(url: str, clock: Clock, standins: dict[WebhookFormat, BrigadeStandin]) -> Lifecycle:
    """An alarm through every step; a false alarm; a fire at a place with no coordinates."""
    db = open_lifecycle_db(url)
    create_feed_tables(db)
    seed_district(db)
    for fmt, standin in standins.items():  # both cover both areas: one takes JSON, one CAP
        hook = (f"{standin.url}/hook",)
        b = Brigade(id=f"both-{fmt.value}", name="两区消防", communities=("c-east",),
                    grids=("g-west-1",), webhook_urls=hook, format=fmt)  # fmt: skip
        standin.secrets.append(add_brigade(db, b))
    ctx = StepContext(config(), RankedDispatcher(["w1", "w2"]), PlainRenderer(), BrigadeFeed())
    life = Lifecycle(db, ctx, clock)
    raised, confirm = change("smk-1/smoke-fire"), change("smk-1/smoke-fire", "confirm")
    for c in (raised, confirm):
        commit(url, [c])
        life.apply_changes([c])
        clock.now += 20
    aid = alarm_id(url, "smk-1/smoke-fire")
    life.acknowledge(aid, "w1")
    life.arrive(aid, "w1")
    key_holder_reached(db, ctx, aid, actor="dispatcher:d1", note=None, now=clock())
    life.verify(aid, "w1")
    life.resolve(aid, "w1", Outcome.REAL)
    for key, outcome in (("smk-1/smoke-fire", Outcome.FALSE_ALARM), ("smk-9/smoke-fire", None)):
        clock.now += 600
        c = change(key)
        commit(url, [c])
        life.apply_changes([c])
        if outcome is not None:
            life.resolve(alarm_id(url, key), "w2", outcome)
    return life


async def posted(url: str, clock: Clock, standins: dict[WebhookFormat, BrigadeStandin]
                 ) -> dict[WebhookFormat, list[list[Processed]]]:  # fmt: skip
    life = every_step(url, clock, standins)
    n = sum(len(steps) for steps in STEPS)
    async with running(life, FAST):
        return {f: by_alarm(await asyncio.to_thread(s.wait_processed, n, 10))
                for f, s in standins.items()}  # fmt: skip


async def test_every_cap_message_we_post_is_valid_cap_and_updates_name_their_alert(
    url: str, clock: Clock, standins: dict[WebhookFormat, BrigadeStandin]
):
    got = (await posted(url, clock, standins))[WebhookFormat.CAP]
    assert [[p.key.split("-", 2)[2] for p in alarm] for alarm in got] == STEPS
    for alarm, surveyed in zip(got, (True, True, False), strict=True):
        alert = ""
        for p in alarm:
            assert p.content_type == "application/cap+xml"
            assert_valid_cap(p.body)
            root = ET.fromstring(p.body)
            own = {n: root.findtext(f"{CAP}{n}") for n in ("msgType", "sender", "identifier",
                                                           "sent", "references")}  # fmt: skip
            assert own["msgType"] == MSG_TYPE.get(p.key.split("-", 2)[2], "Update")
            languages = [i.findtext(f"{CAP}language") for i in root.iter(f"{CAP}info")]
            assert own["sender"] == SENDER and languages == ["zh-CN", "en-US"]
            assert len(list(root.iter(f"{CAP}circle"))) == (2 if surveyed else 0)
            if own["msgType"] == "Alert":
                alert = f"{own['sender']},{own['identifier']},{own['sent']}"
                assert own["references"] is None
            else:  # names the Alert exactly as it was sent
                assert own["references"] == alert


async def test_every_json_body_we_post_matches_the_shipped_schema(
    url: str, clock: Clock, standins: dict[WebhookFormat, BrigadeStandin]
):
    got = (await posted(url, clock, standins))[WebhookFormat.JSON]
    assert [[p.json()["step"] for p in alarm] for alarm in got] == STEPS
    for alarm in got:
        for p in alarm:
            assert p.content_type == "application/json"
            assert_valid_json(p.json())
            assert p.json()["msg_type"] == MSG_TYPE.get(p.json()["step"], "Update")
            raised = f"ga-{p.json()['alarm']['alarm_id']}-raised"
            assert p.json()["references"] == (None if p.key == raised else raised)


# -- the brigade API's answers against its own /openapi.json ---------------------------------

OPENAPI = "urn:gridalarm:openapi"


def documented(doc: dict[str, Any], method: str, template: str, r: httpx.Response) -> None:
    """*r*'s body validates against the schema /openapi.json gives for its status."""
    responses = doc["paths"][template][method]["responses"]
    assert str(r.status_code) in responses, f"{method} {template}: {r.status_code} undocumented"
    schema = responses[str(r.status_code)]["content"]["application/json"]["schema"]
    registry = Registry().with_resource(OPENAPI, Resource(doc, DRAFT202012))
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"{OPENAPI}#{schema['$ref'].removeprefix('#')}"}, registry=registry
    )
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(r.json())]
    assert errors == [], f"{method} {template} {r.status_code}: {errors}"


async def test_the_brigade_apis_answers_match_its_openapi_schemas(tmp_path: Path) -> None:
    async with running_cloud(tmp_path) as cloud, cloud.client(cloud.keys.east) as c:
        aid = await cloud.raise_fire("smk-1/smoke-fire")
        await cloud.desk.acknowledge(aid, "w1", "sms")
        doc = (await c.get("/openapi.json")).json()
        one, many = f"{V1}/alarms/{{alarm_id}}", f"{V1}/alarms"
        reads = [(many, await c.get(f"{V1}/alarms", params={"state": "all"})),
                 (one, await c.get(f"{V1}/alarms/{aid}")),
                 (one, await c.get(f"{V1}/alarms/999999")),
                 (many, await c.get(f"{V1}/alarms", params={"state": "closed"}))]  # fmt: skip
        async with cloud.client() as anonymous:
            reads.append((many, await anonymous.get(f"{V1}/alarms")))
        for template, r in reads:
            documented(doc, "get", template, r)
        assert [r.status_code for _, r in reads] == [200, 200, 404, 422, 401]
        writes = {
            "status": [{"status": "dispatched", "eta_s": 360, "idempotency_key": "s1"},
                       {"status": "received", "idempotency_key": "s1"}, {"status": "received"}],
            "answer": [{"answer": "accepted", "incident": "F-1", "idempotency_key": "a1"}],
            "requests": [{"text": "钥匙人多久到?", "idempotency_key": "r1"}],
        }  # fmt: skip
        codes = []
        for path, bodies in writes.items():
            for b in bodies:
                r = await cloud.post(f"{V1}/alarms/{aid}/{path}", b)
                documented(doc, "post", f"{one}/{path}", r)
                codes.append(r.status_code)
        r = await cloud.post(f"{V1}/alarms/{aid}/status", {"status": "received",
                             "idempotency_key": "s2"}, token=cloud.keys.east_read_only)  # fmt: skip
        documented(doc, "post", f"{one}/status", r)
        assert [*codes, r.status_code] == [200, 409, 422, 200, 200, 403]
