"""`gridalarm cloud user add|passwd|disable`: the console's staff accounts.

A password is typed at a hidden prompt (twice), or read as the first line of standard input
when that is not a terminal; never from the command line, where others could read it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Engine

from cloud.config import load_cloud_config
from cloud.console.tables import create_console_tables
from cloud.console.users import Role, UserError, add_user, disable_user, set_password
from cloud.database import connect
from wire.yamlconf import ConfigError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Console staff accounts.")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Cloud config file (YAML).")]
DatabaseOpt = Annotated[
    str | None, typer.Option("--database", help="Database URL, instead of --config.")
]
NameArg = Annotated[str, typer.Argument(help="User name: a-z 0-9 . _ -")]


def _db(config: Path | None, database: str | None) -> Engine:
    if (config is None) == (database is None):
        typer.echo("give --config or --database (one of them)", err=True)
        raise typer.Exit(2)
    url = database
    if config is not None:
        try:
            url = load_cloud_config(config).database_url
        except ConfigError as err:
            for issue in err.issues:
                typer.echo(str(issue), err=True)
            raise typer.Exit(2) from None
    assert url is not None
    db = connect(url)
    create_console_tables(db)
    return db


def _password() -> str:
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        typer.echo("no password on standard input", err=True)
        raise typer.Exit(2)
    return line


def _run(action: str, fn: Callable[[], object]) -> None:
    try:
        fn()
    except UserError as err:
        typer.echo(f"{action}: {err}", err=True)
        raise typer.Exit(1) from None


@app.command()
def add(
    name: NameArg,
    role: Annotated[Role, typer.Option("--role", help="viewer, dispatcher or admin.")],
    config: ConfigOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Create a staff account."""
    db = _db(config, database)
    password = _password()
    _run("user add", lambda: add_user(db, name, password, role))
    typer.echo(f"user {name.lower()} added ({role.value})")


@app.command()
def passwd(name: NameArg, config: ConfigOpt = None, database: DatabaseOpt = None) -> None:
    """Set a new password (and enable the account); its sessions end."""
    db = _db(config, database)
    password = _password()
    _run("user passwd", lambda: set_password(db, name, password))
    typer.echo(f"user {name.lower()}: password changed")


@app.command()
def disable(name: NameArg, config: ConfigOpt = None, database: DatabaseOpt = None) -> None:
    """The account can no longer sign in; its sessions end."""
    db = _db(config, database)
    _run("user disable", lambda: disable_user(db, name))
    typer.echo(f"user {name.lower()} disabled")
