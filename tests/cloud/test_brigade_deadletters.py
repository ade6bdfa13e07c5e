"""Dead letters through the CLI: listed, redelivered under the same key; the signing secret."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from cloud.brigade.cli import app
from cloud.brigade.directory import Brigade, add_brigade
from cloud.brigade.feed import Delivery, brigade_messages, create_feed_tables
from cloud.database import connect


def dead_row(seq: int, brigade: str, alarm: int) -> dict[str, object]:
    return {
        "seq": seq, "brigade_id": brigade, "alarm_id": alarm, "step": "raised",
        "message_id": f"ga-{alarm}-raised", "facts": "{}", "created_at": 1.0,
        "state": Delivery.DEAD, "attempts": 7, "next_attempt_at": 1.0,
        "last_error": "http://x/hook: HTTP 400 'bad'",
    }  # fmt: skip


def test_dead_letters_listed_and_redelivered_with_the_same_key(tmp_path: Path) -> None:
    config = tmp_path / "cloud.yaml"
    config.write_text(yaml.safe_dump({"database_url": f"sqlite:///{tmp_path / 'c.sqlite'}"}))
    db = connect(f"sqlite:///{tmp_path / 'c.sqlite'}")
    create_feed_tables(db)
    secret = add_brigade(db, Brigade(id="east-fire", name="东区消防"))
    add_brigade(db, Brigade(id="west-fire", name="西区消防"))
    with db.begin() as conn:
        conn.execute(sa.insert(brigade_messages), [dead_row(1, "east-fire", 1),
                                                   dead_row(2, "west-fire", 2),
                                                   dead_row(3, "east-fire", 3)])  # fmt: skip
    run = CliRunner().invoke
    listed = run(app, ["dead", "-c", str(config), "--json", "--brigade", "east-fire"])
    assert listed.exit_code == 0, listed.output
    assert [d["message_id"] for d in json.loads(listed.output)] == ["ga-1-raised", "ga-3-raised"]
    assert "HTTP 400" in run(app, ["dead", "-c", str(config)]).output

    assert run(app, ["redeliver", "-c", str(config)]).exit_code == 2  # neither id nor --all
    one = run(app, ["redeliver", "-c", str(config), "ga-3-raised"])
    assert one.exit_code == 0 and "1 message" in one.output
    rest = run(app, ["redeliver", "-c", str(config), "--all", "--brigade", "east-fire"])
    assert rest.exit_code == 0 and "1 message" in rest.output
    with db.connect() as conn:
        got = conn.execute(sa.select(brigade_messages).order_by(brigade_messages.c.seq)).all()
    assert [(r.message_id, r.state, r.attempts) for r in got] == [
        ("ga-1-raised", "pending", 0), ("ga-2-raised", "dead", 7), ("ga-3-raised", "pending", 0)
    ]  # fmt: skip
    assert run(app, ["redeliver", "-c", str(config), "ga-3-raised"]).exit_code == 2

    shown = run(app, ["secret", "-c", str(config), "east-fire"])
    assert shown.exit_code == 0 and shown.output.strip() == secret
    assert run(app, ["secret", "-c", str(config), "nobody"]).exit_code == 2
