"""Signed, expiring links to an alarm page, short enough to fit in an SMS.

Token layout (then URL-safe base64 without padding)::

    varint-id(worker_id) varint-id(alarm_id) varint(expires_at - 2024-01-01, seconds) tag[8]

`varint-id` encodes a canonical decimal id ("4821") as a number and anything else as
length-prefixed UTF-8, so numeric ids cost 2-3 bytes. `tag` is HMAC-SHA256 over a domain
prefix plus the payload, truncated to 64 bits: every guess at a forgery costs a request to our
server, and the zh SMS has 70 characters for everything, so the token must stay ~22 characters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from cloud.notify.errors import LinkExpired, LinkForged, LinkMalformed

_EPOCH_S = 1_704_067_200  # 2024-01-01T00:00:00Z keeps the expiry varint at 4 bytes until 2032
_TAG_BYTES = 8
_DOMAIN = b"gridalarm/link/v1\x00"
_MAX_TOKEN_CHARS = 512
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")


def link(base_url: str, token: str) -> str:
    """The worker's page URL for *token*: `{base}/m/{token}`."""
    return f"{base_url.rstrip('/')}/m/{token}"


class LinkSigner:
    """Makes and verifies link tokens; `previous` secrets still verify, for key rotation."""

    def __init__(self, secret: str | bytes, *, previous: Sequence[str | bytes] = ()) -> None:
        keys = [_key(s) for s in (secret, *previous)]
        if any(len(k) < 16 for k in keys):
            raise ValueError("link secret must be at least 16 bytes")
        self._keys = keys

    def make(self, worker_id: str, alarm_id: str, expires_at: datetime) -> str:
        """A token that lets *worker_id* open *alarm_id* until *expires_at* (tz-aware)."""
        expiry = int(_aware(expires_at).timestamp()) - _EPOCH_S
        if expiry < 0:
            raise ValueError(f"expires_at {expires_at} is before 2024")
        payload = _encode_id(worker_id) + _encode_id(alarm_id) + _varint(expiry)
        return _b64(payload + self._tag(self._keys[0], payload))

    def verify(self, token: str, now: datetime) -> tuple[str, str]:
        """`(worker_id, alarm_id)` of an authentic, unexpired token; else a `LinkError`."""
        raw = _unb64(token)
        if len(raw) < _TAG_BYTES + 3:
            raise LinkMalformed("link token is too short")
        payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        # Check every key without short-circuiting on the first match: constant work per token.
        matches = [hmac.compare_digest(self._tag(k, payload), tag) for k in self._keys]
        if not any(matches):
            raise LinkForged("link token signature does not match")
        worker_id, alarm_id, expiry = _decode_payload(payload)
        if int(_aware(now).timestamp()) >= expiry + _EPOCH_S:
            raise LinkExpired(worker_id, alarm_id)
        return worker_id, alarm_id

    @staticmethod
    def _tag(key: bytes, payload: bytes) -> bytes:
        return hmac.new(key, _DOMAIN + payload, hashlib.sha256).digest()[:_TAG_BYTES]


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {t}: pass a timezone-aware time")
    return t.astimezone(UTC)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(token: str) -> bytes:
    if len(token) > _MAX_TOKEN_CHARS or not _TOKEN_RE.fullmatch(token):
        raise LinkMalformed("link token has characters outside URL-safe base64")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as err:
        raise LinkMalformed(f"link token is not base64: {err}") from err
    if _b64(raw) != token:  # reject non-canonical spellings of the same bytes
        raise LinkMalformed("link token is not canonically encoded")
    return raw


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(buf) and shift <= 63:
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise LinkMalformed("link token payload is truncated")


def _encode_id(ident: str) -> bytes:
    if ident.isascii() and ident.isdigit() and str(int(ident)) == ident:
        return _varint(int(ident) << 1)
    raw = ident.encode("utf-8")
    return _varint(len(raw) << 1 | 1) + raw


def _read_id(buf: bytes, pos: int) -> tuple[str, int]:
    head, pos = _read_varint(buf, pos)
    if not head & 1:
        return str(head >> 1), pos
    end = pos + (head >> 1)
    if end > len(buf):
        raise LinkMalformed("link token payload is truncated")
    try:
        return buf[pos:end].decode("utf-8"), end
    except UnicodeDecodeError as err:
        raise LinkMalformed("link token id is not UTF-8") from err


def _decode_payload(payload: bytes) -> tuple[str, str, int]:
    worker_id, pos = _read_id(payload, 0)
    alarm_id, pos = _read_id(payload, pos)
    expiry, pos = _read_varint(payload, pos)
    if pos != len(payload):
        raise LinkMalformed("link token payload has trailing bytes")
    return worker_id, alarm_id, expiry
