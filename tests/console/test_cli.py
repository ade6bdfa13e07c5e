"""`gridalarm cloud user add|passwd|disable`: passwords from standard input, never argv."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from cloud.cli import app
from cloud.console.users import authenticate


def test_add_passwd_disable_through_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    runner = CliRunner()
    added = runner.invoke(
        app,
        ["user", "add", "Zhang", "--role", "dispatcher", "--database", url],
        input="first password 1\n",
    )
    assert added.exit_code == 0, added.output
    db = sa.create_engine(url)
    assert authenticate(db, "zhang", "first password 1") is not None
    again = runner.invoke(
        app, ["user", "add", "zhang", "--role", "viewer", "--database", url], input="x" * 12 + "\n"
    )
    assert again.exit_code == 1 and "exists" in again.output
    changed = runner.invoke(
        app, ["user", "passwd", "zhang", "--database", url], input="second password 2\n"
    )
    assert changed.exit_code == 0, changed.output
    assert authenticate(db, "zhang", "first password 1") is None
    assert authenticate(db, "zhang", "second password 2") is not None
    off = runner.invoke(app, ["user", "disable", "zhang", "--database", url])
    assert off.exit_code == 0
    assert authenticate(db, "zhang", "second password 2") is None
    empty = runner.invoke(app, ["user", "passwd", "zhang", "--database", url], input="")
    assert empty.exit_code == 2
    unknown = runner.invoke(app, ["user", "disable", "ghost", "--database", url])
    assert unknown.exit_code == 1 and "no user" in unknown.output
