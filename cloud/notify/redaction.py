"""What may go into a log line: masked phone numbers, no links or tokens, no control characters.

A signed link is a credential for 24 hours and a phone number is personal data, and both end up
in INFO lines that are shipped and kept far longer than either should live. Text from outside
(an SMS sender's ``From``, an error a provider wrote) may carry newlines or terminal escapes
that forge or hide log lines. Every log call that prints such a value passes it through here.
"""

from __future__ import annotations

import re
import unicodedata

MAX_LOGGED_CHARS = 300  # a log line stays one readable line whatever a caller was sent
LINK = "<link>"
_PHONE_SHAPE = re.compile(r"\+?\d{6,15}")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
# A URL of any scheme we send or receive; its query or path may hold a token or a key.
_URL = re.compile(r"(?i)\b(?:https?|wss?|mqtts?)://\S+")
# A page path without its host: the token is the credential.
_PAGE_PATH = re.compile(r"/m/[A-Za-z0-9_-]{8,}")
# A run of at least 7 digits, optionally led by "+" and split by single spaces or dashes:
# a phone number in free text. Shorter runs (alarm ids, years, status codes) stay readable.
_DIGIT_RUN = re.compile(r"\+?\d(?:[ -]?\d){6,}")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})


def mask_phone(number: str | None) -> str:
    """``+8613800000020`` → ``+86138****0020``; anything not shaped like a number is not echoed."""
    if not number:
        return "-"
    compact = _PHONE_SEPARATORS.sub("", number)
    if not _PHONE_SHAPE.fullmatch(compact):
        return f"<not a phone number, {len(number)} chars>"
    return _mask_digits(compact)


def redact(text: object, limit: int = MAX_LOGGED_CHARS) -> str:
    """Free text (an error, a message body) for a log: links and page tokens replaced, digit
    runs masked as phone numbers, control characters escaped, at most *limit* characters."""
    s = _URL.sub(LINK, str(text))
    s = _PAGE_PATH.sub("/m/<token>", s)
    s = _DIGIT_RUN.sub(lambda m: _mask_digits(_PHONE_SEPARATORS.sub("", m.group())), s)
    return escape(s, limit)


def escape(text: object, limit: int = MAX_LOGGED_CHARS) -> str:
    """*text* on one line: control, format and separator characters as ``\\xNN``/``\\uNNNN``
    escapes (a backslash doubled), cut to *limit* characters with an ellipsis."""
    s = str(text)
    cut = len(s) > limit
    out = [_escape_char(c) for c in s[:limit]]
    return "".join(out) + ("…" if cut else "")


def _escape_char(c: str) -> str:
    if c == "\\":
        return "\\\\"
    if c != " " and (unicodedata.category(c) in _UNSAFE_CATEGORIES or c.isspace()):
        code = ord(c)
        if code < 0x100:
            return f"\\x{code:02x}"
        return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return c


def _mask_digits(compact: str) -> str:
    plus = "+" if compact.startswith("+") else ""
    digits = compact.lstrip("+")
    if len(digits) >= 9:
        return f"{plus}{digits[:5]}****{digits[-4:]}"
    return f"{plus}****{digits[-2:]}"


def describe_exception(err: BaseException) -> str:
    """``Type: message (at file:line in function)`` of *err*, redacted, on one line: what a
    traceback would say about the failure without the values it printed verbatim."""
    where = ""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        code = tb.tb_frame.f_code
        path = "/".join(code.co_filename.split("/")[-2:])
        where = f" (at {path}:{tb.tb_lineno} in {code.co_name})"
    return redact(f"{type(err).__name__}: {err}") + escape(where)
