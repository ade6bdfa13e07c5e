"""How much of one SMS a text uses: GSM 03.38 septets, or UCS-2 code units otherwise."""

from __future__ import annotations

from enum import StrEnum

# GSM 03.38 default alphabet (the escape 0x1B left out) and its extension table, whose
# characters cost two septets each.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE = 160
UCS2_SINGLE = 70


class SmsEncoding(StrEnum):
    """The encoding a handset and the carrier will use for a text."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"


def sms_encoding(text: str) -> SmsEncoding:
    """GSM-7 when every character is in the GSM alphabet, UCS-2 otherwise."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text):
        return SmsEncoding.GSM7
    return SmsEncoding.UCS2


def sms_units(text: str) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) that *text* occupies."""
    if sms_encoding(text) is SmsEncoding.GSM7:
        return sum(2 if c in _GSM_EXTENDED else 1 for c in text)
    return len(text.encode("utf-16-le")) // 2


def sms_limit(text: str) -> int:
    """The single-message capacity for *text*'s encoding."""
    return GSM7_SINGLE if sms_encoding(text) is SmsEncoding.GSM7 else UCS2_SINGLE


def fits_one_sms(text: str) -> bool:
    """Whether *text* goes out as one unsegmented SMS."""
    return sms_units(text) <= sms_limit(text)


def fits_sms(text: str, segments: int) -> bool:
    """Whether *text* fits *segments* SMS (a concatenated SMS loses 7 septets / 3 units each)."""
    if segments <= 1:
        return fits_one_sms(text)
    per = GSM7_SINGLE - 7 if sms_encoding(text) is SmsEncoding.GSM7 else UCS2_SINGLE - 3
    return sms_units(text) <= per * segments
