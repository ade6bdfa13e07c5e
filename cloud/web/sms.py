"""``POST /twilio/sms``: a worker's SMS reply ("1" take, "2" false alarm, "3" need help).

The ``X-Twilio-Signature`` is checked against the public URL Twilio was given before anything
is looked up; a bad or missing one is refused with 403 and changes nothing.
"""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape

from fastapi import APIRouter, HTTPException, Request, Response

from cloud.lifecycle import IllegalTransition, Outcome, UnknownAlarm
from cloud.notify import Reply, mask_phone, parse_reply, verify_twilio_signature
from cloud.web.forms import read_form
from cloud.web.protocols import WorkerDesk
from cloud.web.render import ZH

logger = logging.getLogger(__name__)

PATH = "/twilio/sms"

# (zh, en) replies; each fits in one SMS.
_TEXTS: dict[str, tuple[str, str]] = {
    "take": ("已接单，报警{alarm}。请尽快到场。", "Taken: alarm {alarm}. Please go now."),
    "false_alarm": ("已按误报关闭报警{alarm}。", "Alarm {alarm} closed as a false alarm."),
    "need_help": ("已为报警{alarm}求助，正在通知下一位。", "Help requested for alarm {alarm}."),
    "unknown": ("回复1接单 2误报 3求助", "Reply 1 take, 2 false alarm, 3 need help"),
    "no_alarm": ("您当前没有待处理的报警。", "You have no open alarm to answer."),
    "stranger": ("此号码未登记为网格员。", "This number is not registered as a worker."),
    "refused": ("报警{alarm}未变更：{why}", "Alarm {alarm} unchanged: {why}"),
}


def twiml(text: str) -> Response:
    """A TwiML answer that sends *text* back to the sender."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Message>{escape(text)}</Message></Response>"
    )
    return Response(body, media_type="application/xml")


def text(key: str, locale: str, **values: object) -> str:
    """The reply *key* in *locale* (zh-CN unless en)."""
    zh, en = _TEXTS[key]
    return (zh if locale == ZH else en).format(**values)


def router(desk: WorkerDesk, auth_token: str, public_base_url: str) -> APIRouter:
    """The webhook route; Twilio signs ``public_base_url + PATH`` (plus any query string)."""
    if not auth_token.strip():
        raise ValueError("an empty Twilio auth token verifies forged requests")
    r = APIRouter()
    signed_url = public_base_url.rstrip("/") + PATH

    @r.post(PATH, name="twilio_sms")
    async def twilio_sms(request: Request) -> Response:
        form = await read_form(request)
        url = signed_url + (f"?{request.url.query}" if request.url.query else "")
        signature = request.headers.get("x-twilio-signature")
        if not verify_twilio_signature(url, form, signature, auth_token):
            logger.warning(
                "twilio webhook: bad or missing signature from %s", mask_phone(form.get("From"))
            )
            raise HTTPException(403, "invalid Twilio signature")
        return await _answer(desk, form.get("From", ""), form.get("Body", ""))

    return r


async def _answer(desk: WorkerDesk, phone: str, body: str) -> Response:
    who = await desk.worker_by_phone(phone)
    if who is None:
        logger.info("sms reply from unregistered number %s", mask_phone(phone))
        return twiml(text("stranger", ZH) + " " + text("stranger", "en"))
    reply = parse_reply(body)
    if reply is Reply.UNKNOWN:
        return twiml(text("unknown", who.locale))
    alarm = await desk.latest_notified(who.id)
    if alarm is None:
        return twiml(text("no_alarm", who.locale))
    try:
        if reply is Reply.TAKE:
            await desk.take(alarm, who.id, "sms")
        elif reply is Reply.FALSE_ALARM:
            await desk.resolve(alarm, who.id, Outcome.FALSE_ALARM, None, "sms")
        else:
            await desk.need_help(alarm, who.id, None, "sms")
    except (IllegalTransition, UnknownAlarm) as err:
        logger.info("alarm %d: sms %s from %s refused: %s", alarm, reply, who.id, err)
        return twiml(text("refused", who.locale, alarm=alarm, why=err))
    logger.info("alarm %d: sms %s from worker %s", alarm, reply, who.id)
    return twiml(text(reply.value, who.locale, alarm=alarm))
