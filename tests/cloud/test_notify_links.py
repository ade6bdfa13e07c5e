"""Signed, expiring links: round trip, expiry, forgery, tampering, malformed tokens."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from cloud.notify import LinkExpired, LinkForged, LinkMalformed, LinkSigner, link

SECRET = "0123456789abcdef-link-secret"
NOW = datetime(2025, 3, 14, 6, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=12)


def _raw(token: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def _tok(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("worker_id", "alarm_id"),
    [
        ("17", "4821"),
        ("w-017", "al-2025-000123"),
        ("0", "007"),
        ("林秀英", "a:b/c"),
        ("w17", "3f1e9c1a-8a8b-4c7e-9a43-0d7d7f6c2b11"),
    ],
)
def test_round_trip(worker_id: str, alarm_id: str) -> None:
    signer = LinkSigner(SECRET)
    token = signer.make(worker_id, alarm_id, LATER)
    assert signer.verify(token, NOW) == (worker_id, alarm_id)


def test_token_is_short_and_url_safe() -> None:
    token = LinkSigner(SECRET).make("17", "48213", LATER)
    assert len(token) <= 22
    assert token.replace("-", "").replace("_", "").isalnum()


def test_link_url() -> None:
    assert link("https://g.cn/", "AbC") == "https://g.cn/m/AbC"


def test_expired_keeps_ids_for_a_friendly_page() -> None:
    signer = LinkSigner(SECRET)
    token = signer.make("17", "4821", NOW + timedelta(minutes=30))
    assert signer.verify(token, NOW + timedelta(minutes=29, seconds=59)) == ("17", "4821")
    with pytest.raises(LinkExpired) as info:
        signer.verify(token, NOW + timedelta(minutes=30))
    assert (info.value.worker_id, info.value.alarm_id) == ("17", "4821")


def test_other_secret_is_forged() -> None:
    token = LinkSigner("another-secret-of-16+bytes").make("17", "4821", LATER)
    with pytest.raises(LinkForged):
        LinkSigner(SECRET).verify(token, NOW)


def test_rotated_secret_still_verifies() -> None:
    old = LinkSigner("old-secret-0123456789")
    token = old.make("17", "4821", LATER)
    assert LinkSigner(SECRET, previous=["old-secret-0123456789"]).verify(token, NOW) == (
        "17",
        "4821",
    )


def test_wrong_worker_cannot_be_swapped_in() -> None:
    signer = LinkSigner(SECRET)
    mine = _raw(signer.make("17", "4821", LATER))
    theirs = _raw(signer.make("18", "4821", LATER))
    # Same layout, only the worker differs: graft my tag onto their payload.
    assert len(mine) == len(theirs)
    with pytest.raises(LinkForged):
        signer.verify(_tok(bytes(theirs[:-8] + mine[-8:])), NOW)


@pytest.mark.parametrize("index", range(12))
def test_any_flipped_byte_is_refused(index: int) -> None:
    signer = LinkSigner(SECRET)
    raw = _raw(signer.make("17", "4821", LATER))
    raw[index % len(raw)] ^= 0x01
    with pytest.raises((LinkForged, LinkMalformed)):
        signer.verify(_tok(bytes(raw)), NOW)


def test_tampered_alarm_id_is_forged() -> None:
    signer = LinkSigner(SECRET)
    raw = _raw(signer.make("w17", "a4821", LATER))
    at = bytes(raw).index(b"a4821")
    raw[at + 4] = ord("2")  # a4821 -> a4822
    with pytest.raises(LinkForged):
        signer.verify(_tok(bytes(raw)), NOW)


def test_extended_expiry_is_forged() -> None:
    signer = LinkSigner(SECRET)
    short = _raw(signer.make("17", "4821", NOW + timedelta(minutes=1)))
    longer = _raw(signer.make("17", "4821", NOW + timedelta(days=30)))
    with pytest.raises(LinkForged):
        signer.verify(_tok(bytes(longer[:-8] + short[-8:])), NOW + timedelta(minutes=5))


@pytest.mark.parametrize(
    "token", ["", "abc", "not a token!", "A" * 600, "AAAA====", "AB+/CDEFGHIJKLMNOP", "AAAAB"]
)
def test_malformed(token: str) -> None:
    with pytest.raises(LinkMalformed):
        LinkSigner(SECRET).verify(token, NOW)


def test_non_canonical_base64_is_malformed() -> None:
    token = LinkSigner(SECRET).make("17", "48213", LATER)
    # 16 bytes -> 22 chars, the last carries 4 unused bits; setting one must not verify.
    assert len(token) % 4 == 2
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    twin = token[:-1] + alphabet[last | 1 if last % 2 == 0 else last & ~1]
    with pytest.raises(LinkMalformed):
        LinkSigner(SECRET).verify(twin, NOW)


def test_naive_times_and_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        LinkSigner("short")
    with pytest.raises(ValueError, match="naive"):
        LinkSigner(SECRET).make("17", "4821", datetime(2025, 3, 14))
