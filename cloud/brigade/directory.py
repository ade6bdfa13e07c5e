"""Brigades and their API keys in the cloud database (SQLAlchemy Core, SQLite or PostgreSQL).

A brigade covers communities and grids (it only ever sees alarms there), receives webhooks in
one format, and holds keys: each hashed, scoped, with an expiry, revocable. Rotating issues a
new key with the same scopes and retires the old ones after a grace period, so a brigade's
system can switch without a gap.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from sqlalchemy.engine import Connection, Engine

from cloud.brigade.keys import NewKey, Refusal, Scope, StoredKey, check, key_id_of, make_key
from cloud.brigade.signing import new_secret
from cloud.lifecycle.columns import add_on_open

metadata = sa.MetaData()

brigades = sa.Table(
    "brigades",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("communities", sa.Text, nullable=False),  # JSON list
    sa.Column("grids", sa.Text, nullable=False),  # JSON list
    sa.Column("webhook_urls", sa.Text, nullable=False),  # JSON list
    sa.Column("format", sa.String(8), nullable=False),
    # the HMAC secret both sides sign requests with (cloud.brigade.signing); kept readable,
    # as we must sign with it. NULL in databases made before it: one is made on first use.
    sa.Column("signing_secret", sa.String(96), nullable=True),
)
add_on_open(brigades, "signing_secret")

brigade_keys = sa.Table(
    "brigade_keys",
    metadata,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("brigade_id", sa.String(64), nullable=False, index=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),  # JSON list
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Column("revoked_at", sa.Float, nullable=True),
)

BrigadeId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$")]


class WebhookFormat(enum.StrEnum):
    JSON = "json"  # our documented JSON
    CAP = "cap"  # OASIS CAP 1.2 XML


class Brigade(BaseModel):
    """A fire brigade's dispatch system as we know it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: BrigadeId = Field(description="Stable id, e.g. siming-fire")
    name: str = Field(min_length=1, max_length=200, description="Shown to people")
    communities: tuple[str, ...] = Field(default=(), description="Communities it covers")
    grids: tuple[str, ...] = Field(default=(), description="Further grids it covers")
    webhook_urls: tuple[HttpUrl, ...] = Field(default=(), description="Where alarms are pushed")
    format: WebhookFormat = Field(default=WebhookFormat.JSON, description="Webhook body format")

    def covers(self, community: str, grid: str) -> bool:
        return community in self.communities or grid in self.grids


class UnknownBrigade(LookupError):
    """No brigade with that id."""


def create_brigade_tables(db: Engine) -> None:
    metadata.create_all(db)


def add_brigade(db: Engine, brigade: Brigade) -> str:
    """Store a new brigade (an existing id is refused: IntegrityError); its signing secret."""
    secret = new_secret()
    with db.begin() as conn:
        conn.execute(sa.insert(brigades).values({**_row(brigade), "signing_secret": secret}))
    return secret


def signing_secret(conn: Connection, brigade_id: str) -> str:
    """The brigade's signing secret (made now if it has none yet)."""
    got = conn.execute(
        sa.select(brigades.c.signing_secret).where(brigades.c.id == brigade_id)
    ).first()
    if got is None:
        raise UnknownBrigade(brigade_id)
    if got.signing_secret:
        return str(got.signing_secret)
    secret = new_secret()
    conn.execute(
        sa.update(brigades).where(brigades.c.id == brigade_id).values(signing_secret=secret)
    )
    return secret


def brigade(conn: Connection, brigade_id: str) -> Brigade:
    row = conn.execute(sa.select(brigades).where(brigades.c.id == brigade_id)).first()
    if row is None:
        raise UnknownBrigade(brigade_id)
    return Brigade(
        id=row.id, name=row.name, communities=json.loads(row.communities),
        grids=json.loads(row.grids), webhook_urls=json.loads(row.webhook_urls),
        format=WebhookFormat(row.format),
    )  # fmt: skip


def list_brigades(db: Engine) -> list[tuple[Brigade, list[StoredKey]]]:
    """Every brigade with its keys (no secrets), by id."""
    with db.connect() as conn:
        ids = conn.execute(sa.select(brigades.c.id).order_by(brigades.c.id)).scalars().all()
        return [(brigade(conn, i), _keys(conn, brigade_keys.c.brigade_id == i)) for i in ids]


def issue_key(
    db: Engine, brigade_id: str, scopes: Iterable[Scope], now: float, ttl_s: float | None
) -> NewKey:
    """A new key for *brigade_id*; its token is in the result and nowhere else."""
    new = make_key()
    with db.begin() as conn:
        brigade(conn, brigade_id)  # UnknownBrigade
        conn.execute(
            sa.insert(brigade_keys).values(
                key_id=new.key_id, brigade_id=brigade_id, digest=new.digest,
                scopes=json.dumps(sorted(Scope(s).value for s in scopes)), created_at=now,
                expires_at=None if ttl_s is None else now + ttl_s, revoked_at=None,
            )
        )  # fmt: skip
    return new


def revoke_key(db: Engine, key_id: str, now: float) -> bool:
    """Revoke a key at once; False when no such live key."""
    k = brigade_keys
    with db.begin() as conn:
        live = sa.and_(k.c.key_id == key_id, k.c.revoked_at.is_(None))
        done = conn.execute(sa.update(k).where(live).values(revoked_at=now)).rowcount
    return bool(done)


def rotate_keys(
    db: Engine, brigade_id: str, now: float, grace_s: float, ttl_s: float | None
) -> NewKey:
    """A new key with the scopes of the brigade's live keys; those stop working after
    *grace_s* (0: at once)."""
    k = brigade_keys
    with db.connect() as conn:
        live = [s for s in _keys(conn, k.c.brigade_id == brigade_id) if _alive(s, now)]
    scopes = frozenset().union(*(s.scopes for s in live)) if live else frozenset(Scope)
    new = issue_key(db, brigade_id, scopes, now, ttl_s)
    with db.begin() as conn:
        conn.execute(
            sa.update(k)
            .where(k.c.key_id.in_([s.key_id for s in live]))
            .values(revoked_at=now + grace_s)
        )
    return new


def authenticate(
    db: Engine, token: str, scope: Scope, now: float
) -> tuple[Brigade | None, Refusal | None]:
    """The brigade whose live key *token* is and holds *scope*; else the refusal."""
    key_id = key_id_of(token)
    if key_id is None:
        return None, Refusal.MALFORMED
    with db.connect() as conn:
        found = _keys(conn, brigade_keys.c.key_id == key_id)
        stored = found[0] if found else None
        refusal = check(token, stored, scope, now)
        if refusal is not None or stored is None:
            return None, refusal
        return brigade(conn, stored.brigade_id), None


def _alive(key: StoredKey, now: float) -> bool:
    return (key.revoked_at is None or key.revoked_at > now) and (
        key.expires_at is None or key.expires_at > now
    )


def _keys(conn: Connection, where: sa.ColumnElement[bool]) -> list[StoredKey]:
    rows = conn.execute(sa.select(brigade_keys).where(where).order_by(brigade_keys.c.created_at))
    return [
        StoredKey(
            r.key_id,
            r.brigade_id,
            r.digest,
            frozenset(Scope(s) for s in json.loads(r.scopes)),
            r.created_at,
            r.expires_at,
            r.revoked_at,
        )
        for r in rows
    ]


def _row(b: Brigade) -> dict[str, str]:
    return {
        "id": b.id,
        "name": b.name,
        "communities": json.dumps(list(b.communities)),
        "grids": json.dumps(list(b.grids)),
        "webhook_urls": json.dumps([str(u) for u in b.webhook_urls]),
        "format": b.format.value,
    }
