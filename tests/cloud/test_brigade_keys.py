"""Brigades' API keys: shown once, kept as a hash, scoped, expiring, revocable, rotatable;
through the library and through `gridalarm cloud brigade` as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cloud.brigade.directory import (
    Brigade,
    add_brigade,
    authenticate,
    create_brigade_tables,
    issue_key,
    revoke_key,
    rotate_keys,
)
from cloud.brigade.keys import Refusal, Scope
from cloud.database import connect

NOW = 1_800_000_000.0
SIMING = Brigade(id="siming-fire", name="思明消防救援大队", communities=("c-1",), grids=("g-9",))


@pytest.fixture
def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = connect(f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    create_brigade_tables(engine)
    add_brigade(engine, SIMING)
    yield engine
    engine.dispose()


def test_a_key_works_for_its_scopes_only_and_its_secret_is_not_stored(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    new = issue_key(db, "siming-fire", [Scope.ALARMS_READ], NOW, ttl_s=3600)
    assert authenticate(db, new.token, Scope.ALARMS_READ, NOW) == (SIMING, None)
    assert authenticate(db, new.token, Scope.STATUS_WRITE, NOW) == (None, Refusal.SCOPE)
    assert Refusal.SCOPE.status == 403 and Refusal.WRONG_SECRET.status == 401
    secret = new.token.split("_", 2)[2]
    db.dispose()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("cloud.sqlite*"))
    assert secret.encode() not in stored and new.token.encode() not in stored
    assert new.digest.encode() in stored


def test_wrong_unknown_malformed_expired_and_revoked_keys_are_refused(db) -> None:  # type: ignore[no-untyped-def]
    new = issue_key(db, "siming-fire", list(Scope), NOW, ttl_s=3600)
    key_id, secret = new.token.split("_")[1], new.token.split("_", 2)[2]
    forged = f"gab_{key_id}_{'A' * len(secret)}"
    assert authenticate(db, forged, Scope.ALARMS_READ, NOW) == (None, Refusal.WRONG_SECRET)
    other = f"gab_{'0' * 12}_{secret}"
    assert authenticate(db, other, Scope.ALARMS_READ, NOW) == (None, Refusal.UNKNOWN)
    for bad in ("", "Bearer x", new.token + "x", new.token.upper(), "gab_" + "%" * 60):
        assert authenticate(db, bad, Scope.ALARMS_READ, NOW) == (None, Refusal.MALFORMED)
    assert authenticate(db, new.token, Scope.ALARMS_READ, NOW + 3600) == (None, Refusal.EXPIRED)
    assert revoke_key(db, new.key_id, NOW + 10)
    assert not revoke_key(db, new.key_id, NOW + 11), "revoked already"
    assert authenticate(db, new.token, Scope.ALARMS_READ, NOW + 10) == (None, Refusal.REVOKED)


def test_rotation_keeps_the_scopes_and_retires_the_old_key_after_the_grace(db) -> None:  # type: ignore[no-untyped-def]
    old = issue_key(db, "siming-fire", [Scope.STATUS_WRITE], NOW, ttl_s=None)
    new = rotate_keys(db, "siming-fire", NOW + 100, grace_s=60, ttl_s=None)
    assert new.token != old.token
    assert authenticate(db, new.token, Scope.STATUS_WRITE, NOW + 100)[1] is None
    assert authenticate(db, new.token, Scope.ALARMS_READ, NOW + 100)[1] is Refusal.SCOPE
    assert authenticate(db, old.token, Scope.STATUS_WRITE, NOW + 159)[1] is None, "grace"
    assert authenticate(db, old.token, Scope.STATUS_WRITE, NOW + 160)[1] is Refusal.REVOKED


def test_a_brigade_covers_only_its_area() -> None:
    assert SIMING.covers("c-1", "g-1") and SIMING.covers("c-2", "g-9")
    assert not SIMING.covers("c-2", "g-1")


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridalarm", "cloud", "brigade", *args, "--config", "cloud.yaml"],
        cwd=tmp_path, env={**os.environ, "COLUMNS": "40"}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def test_the_cli_shows_a_key_once_and_lists_without_secrets(tmp_path: Path) -> None:
    (tmp_path / "cloud.yaml").write_text(yaml.safe_dump({"database_url": "sqlite:///c.sqlite"}))
    added = cli(
        tmp_path, "add", "--id", "siming-fire", "--name", "思明消防", "--community", "c-1",
        "--webhook", "https://119.example.cn/hook", "--format", "cap", "--scope", "alarms:read",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    token = next(w for w in added.stdout.split() if w.startswith("gab_"))
    assert "shown once" in added.stdout
    again = cli(tmp_path, "add", "--id", "siming-fire", "--name", "x")
    assert again.returncode == 2 and "exists already" in again.stderr
    bad = cli(tmp_path, "add", "--id", "Bad Id!", "--name", "x", "--webhook", "not a url")
    assert bad.returncode == 2 and "id:" in bad.stderr and "webhook_urls" in bad.stderr

    listed = cli(tmp_path, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert token not in listed.stdout and token.split("_", 2)[2] not in listed.stdout
    (b,) = json.loads(listed.stdout)
    assert (b["id"], b["format"], b["communities"]) == ("siming-fire", "cap", ["c-1"])
    (k,) = b["keys"]
    assert (k["scopes"], k["state"]) == (["alarms:read"], "live")
    assert token.split("_")[1] == k["key_id"]

    rotated = cli(tmp_path, "rotate", "siming-fire", "--grace-hours", "0")
    assert rotated.returncode == 0, rotated.stderr
    assert cli(tmp_path, "revoke", k["key_id"]).returncode == 2, "retired by the rotation"
    states = [x["state"] for x in json.loads(cli(tmp_path, "list", "--json").stdout)[0]["keys"]]
    assert states == ["revoked", "live"]
