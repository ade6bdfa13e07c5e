"""What comes back from Twilio: signed webhook requests carrying the worker's SMS reply."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from enum import StrEnum

from twilio.request_validator import RequestValidator


class Reply(StrEnum):
    """What a worker's SMS reply asks for."""

    TAKE = "take"
    FALSE_ALARM = "false_alarm"
    NEED_HELP = "need_help"
    UNKNOWN = "unknown"


_BY_DIGIT = {"1": Reply.TAKE, "2": Reply.FALSE_ALARM, "3": Reply.NEED_HELP}
_BY_WORD = {
    "接单": Reply.TAKE,
    "接": Reply.TAKE,
    "take": Reply.TAKE,
    "误报": Reply.FALSE_ALARM,
    "false": Reply.FALSE_ALARM,
    "求助": Reply.NEED_HELP,
    "help": Reply.NEED_HELP,
}
_NOISE = re.compile(r"[\s\.,;:!?。，；：！？、=\-\"'“”‘’()（）\[\]【】]+")


def verify_twilio_signature(
    url: str, params: Mapping[str, str], signature: str | None, auth_token: str
) -> bool:
    """Whether `X-Twilio-Signature` *signature* signs *url* + *params* (twilio's validator).

    *url* must be the exact public URL Twilio requested, query string included. An empty
    *auth_token* verifies nothing: with it anyone could compute a valid signature.
    """
    if not signature or not auth_token.strip():
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def parse_reply(body: str) -> Reply:
    """ "1"/"2"/"3", 接单/误报/求助 (or take/false/help), full-width digits and spacing tolerated.

    A digit followed by its own word ("1接单", "2 误报") counts; anything ambiguous is UNKNOWN.
    """
    text = _NOISE.sub("", unicodedata.normalize("NFKC", body)).lower()
    if not text:
        return Reply.UNKNOWN
    if text in _BY_DIGIT:
        return _BY_DIGIT[text]
    if text in _BY_WORD:
        return _BY_WORD[text]
    digit, word = text[0], text[1:]
    if digit in _BY_DIGIT and _BY_WORD.get(word) is _BY_DIGIT[digit]:
        return _BY_DIGIT[digit]
    return Reply.UNKNOWN
