"""Brigades and their keys over HTTP, ``/api/admin/...``, as ``gridalarm cloud brigade`` does.

Behind the admin bearer token (the registry API's); without one the routes are not mounted.
A key's token and a new brigade's signing secret are in the answer that made them, once,
and never again. The webhooks' dead letters are listed and redelivered here too, and the
dispatcher tells the brigade what only our side knows (the key holder was reached).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from dataclasses import asdict

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from cloud.brigade import deadletters, directory
from cloud.brigade.directory import Brigade
from cloud.brigade.keys import NewKey, Scope, StoredKey
from cloud.brigade.portal import BrigadePortal
from cloud.lifecycle import IllegalTransition, UnknownAlarm

logger = logging.getLogger(__name__)

DAY_S = 86_400.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyRequest(_Body):
    """A new key for a brigade."""

    scopes: list[Scope] = Field(default_factory=lambda: list(Scope), min_length=1,
                                description="What the key may do")  # fmt: skip
    expires_days: float | None = Field(365.0, gt=0, description="Lifetime; null: no expiry")


class RotateRequest(_Body):
    """A new key with the scopes of the live ones, which retire after the grace period."""

    grace_hours: float = Field(24.0, ge=0, description="How long the old keys keep working")
    expires_days: float | None = Field(365.0, gt=0, description="The new key's lifetime")


class NewBrigade(_Body):
    """A brigade to add, and its first key."""

    brigade: Brigade = Field(description="Who it is and what it covers")
    key: KeyRequest = Field(default_factory=KeyRequest, description="Its first API key")


class IssuedKey(_Body):
    """A key just made: ``token`` is shown here once; only its hash is kept."""

    key_id: str
    token: str = Field(description="Bearer token for the brigade's system (shown once)")
    brigade_id: str


class KeyInfo(_Body):
    """A key as kept (no secret)."""

    key_id: str
    scopes: list[Scope]
    created_at: float
    expires_at: float | None
    revoked_at: float | None = Field(description="When it stops (stopped) working")


class BrigadeInfo(_Body):
    """A brigade and its keys."""

    brigade: Brigade
    keys: list[KeyInfo]


class AddedBrigade(_Body):
    """A brigade just added: its first key and its signing secret, both shown once."""

    brigade: Brigade
    key: IssuedKey
    signing_secret: str = Field(description="HMAC-SHA256 secret for requests both ways")


class SigningSecret(_Body):
    brigade_id: str
    signing_secret: str = Field(description="HMAC-SHA256 secret for requests both ways")


class Revoked(_Body):
    key_id: str
    revoked: bool = True


class DeadLetterInfo(_Body):
    """A webhook message given up on (refused, or out of retries)."""

    seq: int
    brigade_id: str
    alarm_id: int
    step: str
    message_id: str = Field(description="Its idempotency key, kept when redelivered")
    created_at: float
    attempts: int
    last_error: str | None


class Redeliver(_Body):
    """Which dead letters to send again: one message, or all (of one brigade)."""

    message_id: str | None = Field(None, description="One message (its idempotency key)")
    brigade_id: str | None = Field(None, description="Only this brigade's")
    all: bool = Field(False, description="Every dead letter (of the brigade, if given)")


class KeyHolderReached(_Body):
    """Our side reached the owner or key holder of the alarm's premises."""

    by: str = Field(min_length=1, max_length=48, description="Who on our side, e.g. a name")
    note: str | None = Field(None, max_length=500, description="E.g. 'on the way, 10 min'")


class Update(_Body):
    alarm_id: int
    changed: bool = Field(description="False when it was recorded before (nothing changed)")


class Redelivered(_Body):
    queued: int = Field(description="How many went back in the queue")


def router(portal: BrigadePortal, admin_token: SecretStr, clock: Callable[[], float]) -> APIRouter:
    """The brigade admin routes over *portal*; every request must carry *admin_token*."""
    admin = Depends(_admin_check(admin_token))
    r = APIRouter(prefix="/api/admin", tags=["brigade admin"], dependencies=[admin])
    _brigades(r, portal.db, clock)
    _keys(r, portal.db, clock)
    _dead_letters(r, portal)
    _updates(r, portal)
    return r


def _admin_check(admin_token: SecretStr) -> Callable[[Request], None]:
    expected = admin_token.get_secret_value().encode("utf-8")

    def admin(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected):
            return
        peer = request.client.host if request.client else "?"
        logger.warning("brigade admin API: bad or missing admin token from %s", peer)
        challenge = {"WWW-Authenticate": 'Bearer realm="gridalarm admin"'}
        raise HTTPException(401, "a valid admin bearer token is required", headers=challenge)

    return admin


def _brigades(r: APIRouter, db: Engine, clock: Callable[[], float]) -> None:
    @r.get("/brigades", name="admin_brigades")
    async def brigades() -> list[BrigadeInfo]:
        """Every brigade with its keys (never a secret)."""
        got = await asyncio.to_thread(directory.list_brigades, db)
        return [BrigadeInfo(brigade=b, keys=[_key(k) for k in keys]) for b, keys in got]

    @r.post("/brigades", status_code=201, name="admin_add_brigade")
    async def add(body: NewBrigade) -> AddedBrigade:
        """Add a brigade; its first key and signing secret are in this answer only."""
        try:
            secret = await asyncio.to_thread(directory.add_brigade, db, body.brigade)
        except sa_exc.IntegrityError:
            raise HTTPException(409, f"brigade {body.brigade.id} exists already") from None
        new = await _issue(db, body.brigade.id, body.key, clock())
        logger.info("brigade admin API: brigade %s added, key %s", body.brigade.id, new.key_id)
        return AddedBrigade(brigade=body.brigade, key=new, signing_secret=secret)

    @r.get("/brigades/{brigade_id}/signing-secret", name="admin_signing_secret")
    async def signing(brigade_id: str) -> SigningSecret:
        """The brigade's signing secret, for their system's configuration."""
        try:
            secret = await asyncio.to_thread(_signing_secret, db, brigade_id)
        except directory.UnknownBrigade:
            raise HTTPException(404, f"no brigade {brigade_id}") from None
        logger.info("brigade admin API: brigade %s's signing secret read", brigade_id)
        return SigningSecret(brigade_id=brigade_id, signing_secret=secret)


def _keys(r: APIRouter, db: Engine, clock: Callable[[], float]) -> None:
    @r.post("/brigades/{brigade_id}/keys", status_code=201, name="admin_issue_key")
    async def issue(brigade_id: str, body: KeyRequest) -> IssuedKey:
        """A new key for the brigade (shown once)."""
        return await _issue(db, brigade_id, body, clock())

    @r.post("/brigades/{brigade_id}/rotate", status_code=201, name="admin_rotate_keys")
    async def rotate(brigade_id: str, body: RotateRequest) -> IssuedKey:
        """A new key; the live ones keep working for the grace period."""
        ttl = None if body.expires_days is None else body.expires_days * DAY_S
        try:
            new = await asyncio.to_thread(
                directory.rotate_keys, db, brigade_id, clock(), body.grace_hours * 3600, ttl
            )
        except directory.UnknownBrigade:
            raise HTTPException(404, f"no brigade {brigade_id}") from None
        logger.info("brigade admin API: brigade %s rotated to key %s", brigade_id, new.key_id)
        return _issued(new, brigade_id)

    @r.post("/brigade-keys/{key_id}/revoke", name="admin_revoke_key")
    async def revoke(key_id: str) -> Revoked:
        """Revoke one key at once."""
        if not await asyncio.to_thread(directory.revoke_key, db, key_id, clock()):
            raise HTTPException(404, f"no live key {key_id}")
        logger.info("brigade admin API: key %s revoked", key_id)
        return Revoked(key_id=key_id)


def _updates(r: APIRouter, portal: BrigadePortal) -> None:
    @r.post("/alarms/{alarm_id}/key-holder-reached", name="admin_key_holder_reached")
    async def reached(alarm_id: int, body: KeyHolderReached) -> Update:
        """Tell the alarm's brigades the key holder was reached (audited; once per alarm)."""
        try:
            done = await portal.key_holder_reached(alarm_id, f"dispatcher:{body.by}", body.note)
        except UnknownAlarm:
            raise HTTPException(404, f"no alarm {alarm_id}") from None
        except IllegalTransition as err:
            raise HTTPException(409, str(err)) from None
        return Update(alarm_id=alarm_id, changed=done)


def _dead_letters(r: APIRouter, portal: BrigadePortal) -> None:
    @r.get("/brigade-dead-letters", name="admin_dead_letters")
    async def letters(brigade: str | None = None) -> list[DeadLetterInfo]:
        """Webhook messages given up on, oldest first (of one brigade when given)."""
        got = await asyncio.to_thread(deadletters.dead_letters, portal.db, brigade)
        return [DeadLetterInfo.model_validate(asdict(d)) for d in got]

    @r.post("/brigade-dead-letters/redeliver", name="admin_redeliver")
    async def redeliver(body: Redeliver) -> Redelivered:
        """Send dead letters again under the same idempotency key, at once."""
        if (body.message_id is None) == (not body.all):
            raise HTTPException(422, "give one message_id, or all: true")
        n = await asyncio.to_thread(
            deadletters.redeliver, portal.db, portal.clock(), message_id=body.message_id,
            brigade_id=body.brigade_id,
        )  # fmt: skip
        if n == 0:
            raise HTTPException(404, "no such dead letter")
        logger.info("brigade admin API: %d dead letters queued again", n)
        portal.kick()
        return Redelivered(queued=n)


async def _issue(db: Engine, brigade_id: str, body: KeyRequest, now: float) -> IssuedKey:
    ttl = None if body.expires_days is None else body.expires_days * DAY_S
    try:
        new = await asyncio.to_thread(directory.issue_key, db, brigade_id, body.scopes, now, ttl)
    except directory.UnknownBrigade:
        raise HTTPException(404, f"no brigade {brigade_id}") from None
    return _issued(new, brigade_id)


def _signing_secret(db: Engine, brigade_id: str) -> str:
    with db.begin() as conn:
        return directory.signing_secret(conn, brigade_id)


def _issued(new: NewKey, brigade_id: str) -> IssuedKey:
    return IssuedKey(key_id=new.key_id, token=new.token, brigade_id=brigade_id)


def _key(k: StoredKey) -> KeyInfo:
    return KeyInfo(key_id=k.key_id, scopes=sorted(k.scopes), created_at=k.created_at,
                   expires_at=k.expires_at, revoked_at=k.revoked_at)  # fmt: skip
