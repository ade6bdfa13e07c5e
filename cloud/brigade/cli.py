"""`gridalarm cloud brigade add|list|revoke|rotate|secret|dead|redeliver`: brigades, their API
keys and signing secret, and the webhooks given up on.

A key's token is printed once, when it is made, and never again: the database holds a hash.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from cloud.brigade.deadletters import dead_letters
from cloud.brigade.deadletters import redeliver as redeliver_dead
from cloud.brigade.directory import (
    Brigade,
    UnknownBrigade,
    WebhookFormat,
    add_brigade,
    create_brigade_tables,
    issue_key,
    list_brigades,
    revoke_key,
    rotate_keys,
    signing_secret,
)
from cloud.brigade.keys import NewKey, Scope, StoredKey
from cloud.config import load_cloud_config
from cloud.database import connect
from wire.yamlconf import ConfigError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Fire brigades and their keys.")

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Cloud config file (YAML).")]
DAY_S = 86400.0


def _db(config: Path) -> Engine:
    try:
        url = load_cloud_config(config).database_url
    except ConfigError as err:
        for issue in err.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(2) from None
    db = connect(url)
    create_brigade_tables(db)
    return db


def _show_key(new: NewKey, brigade_id: str) -> None:
    typer.echo(f"brigade {brigade_id}: key {new.key_id}")
    typer.echo(f"  {new.token}")
    typer.echo("  shown once, now: store it in the brigade's system; only its hash is kept")


@app.command()
def add(  # noqa: PLR0917 - one option per field of a brigade
    config: ConfigOpt,
    brigade_id: Annotated[str, typer.Option("--id", help="Stable id, e.g. siming-fire.")],
    name: Annotated[str, typer.Option("--name", help="Shown to people.")],
    community: Annotated[list[str], typer.Option("--community", help="Covered (repeat).")] = [],  # noqa: B006
    grid: Annotated[list[str], typer.Option("--grid", help="Covered too (repeat).")] = [],  # noqa: B006
    webhook: Annotated[list[str], typer.Option("--webhook", help="Webhook URL (repeat).")] = [],  # noqa: B006
    fmt: Annotated[
        WebhookFormat, typer.Option("--format", help="Webhook body.")
    ] = WebhookFormat.JSON,
    scope: Annotated[list[Scope], typer.Option("--scope", help="Key scope (repeat).")] = [],  # noqa: B006
    expires_days: Annotated[float | None, typer.Option("--expires-days", min=0.01)] = 365.0,
) -> None:
    """Add a brigade and make its first API key (printed once)."""
    try:
        b = Brigade(
            id=brigade_id, name=name, communities=tuple(community), grids=tuple(grid),
            webhook_urls=tuple(webhook), format=fmt,
        )  # fmt: skip
    except ValidationError as err:
        for e in err.errors():
            typer.echo(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}", err=True)
        raise typer.Exit(2) from None
    db = _db(config)
    try:
        secret = add_brigade(db, b)
    except sa_exc.IntegrityError:
        typer.echo(f"brigade {brigade_id} exists already", err=True)
        raise typer.Exit(2) from None
    ttl = None if expires_days is None else expires_days * DAY_S
    _show_key(issue_key(db, b.id, scope or list(Scope), time.time(), ttl), b.id)
    typer.echo(f"brigade {brigade_id}: signing secret (HMAC-SHA256, both directions)")
    typer.echo(f"  {secret}")


@app.command("list")
def list_cmd(
    config: ConfigOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Brigades, what they cover, and their keys (never a secret)."""
    now = time.time()
    out = [
        {**b.model_dump(mode="json"), "keys": [_key_json(k, now) for k in keys]}
        for b, keys in list_brigades(_db(config))
    ]
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    for b in out:
        covers = ", ".join([*b["communities"], *b["grids"]]) or "(nothing)"
        typer.echo(f"{b['id']}  {b['name']}  format {b['format']}  covers {covers}")
        for k in b["keys"]:
            typer.echo(f"  key {k['key_id']}  {' '.join(k['scopes'])}  {k['state']}")


def _key_json(k: StoredKey, now: float) -> dict[str, object]:
    state = "live"
    if k.revoked_at is not None:
        state = "revoked" if k.revoked_at <= now else "retiring"
    elif k.expires_at is not None and k.expires_at <= now:
        state = "expired"
    return {
        "key_id": k.key_id, "scopes": sorted(k.scopes), "created_at": k.created_at,
        "expires_at": k.expires_at, "revoked_at": k.revoked_at, "state": state,
    }  # fmt: skip


@app.command()
def revoke(config: ConfigOpt, key_id: Annotated[str, typer.Argument(help="Key id.")]) -> None:
    """Revoke one key at once."""
    if not revoke_key(_db(config), key_id, time.time()):
        typer.echo(f"no live key {key_id}", err=True)
        raise typer.Exit(2)
    typer.echo(f"key {key_id} revoked")


@app.command()
def rotate(
    config: ConfigOpt,
    brigade_id: Annotated[str, typer.Argument(help="Brigade id.")],
    grace_hours: Annotated[float, typer.Option("--grace-hours", min=0)] = 24.0,
    expires_days: Annotated[float | None, typer.Option("--expires-days", min=0.01)] = 365.0,
) -> None:
    """A new key (printed once); the old ones keep working for the grace period."""
    ttl = None if expires_days is None else expires_days * DAY_S
    try:
        new = rotate_keys(_db(config), brigade_id, time.time(), grace_hours * 3600, ttl)
    except UnknownBrigade:
        typer.echo(f"no brigade {brigade_id}", err=True)
        raise typer.Exit(2) from None
    _show_key(new, brigade_id)


@app.command()
def dead(
    config: ConfigOpt,
    brigade_id: Annotated[str | None, typer.Option("--brigade", help="One brigade only.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Webhook messages given up on (refused, or out of retries), oldest first."""
    letters = dead_letters(_db(config), brigade_id)
    if as_json:
        typer.echo(json.dumps([asdict(d) for d in letters], ensure_ascii=False, indent=2))
        return
    if not letters:
        typer.echo("no dead letters")
    for d in letters:
        typer.echo(f"{d.message_id}  brigade {d.brigade_id}  alarm {d.alarm_id}  {d.step}  "
                   f"{d.attempts} attempts  {d.last_error or ''}")  # fmt: skip


@app.command()
def redeliver(
    config: ConfigOpt,
    message_id: Annotated[str | None, typer.Argument(help="Message id (idempotency key).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    brigade_id: Annotated[str | None, typer.Option("--brigade", help="One brigade only.")] = None,
) -> None:
    """Send dead letters again, under the same idempotency key (a running worker picks them
    up at its next pass, within a minute)."""
    if (message_id is None) == (not every):
        typer.echo("give one message id, or --all", err=True)
        raise typer.Exit(2)
    n = redeliver_dead(_db(config), time.time(), message_id=message_id, brigade_id=brigade_id)
    if n == 0:
        typer.echo("no such dead letter", err=True)
        raise typer.Exit(2)
    typer.echo(f"{n} message(s) queued again")


@app.command()
def secret(
    config: ConfigOpt, brigade_id: Annotated[str, typer.Argument(help="Brigade id.")]
) -> None:
    """The brigade's webhook signing secret (HMAC-SHA256), for their system's configuration."""
    db = _db(config)
    try:
        with db.begin() as conn:
            value = signing_secret(conn, brigade_id)
    except UnknownBrigade:
        typer.echo(f"no brigade {brigade_id}", err=True)
        raise typer.Exit(2) from None
    typer.echo(value)
