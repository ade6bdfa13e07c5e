"""Three cloud workers over one PostgreSQL share the gateways by partition leases: kill -9 one,
pause another past its lease (SIGSTOP) and wake it — every field message is processed exactly
once (per-partition checkpoints count exactly what was published, every sequence seen), every
alarm is raised once, and the paused worker writes nothing after it was replaced."""

from __future__ import annotations

import collections
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cloud.cluster.partition import partition_of
from cloud.database import open_database
from cloud.lifecycle.rule_alarms import alarm_events, alarms
from cloud.lifecycle.tables import escalation_steps, outbox
from gridalarm.brokers import Mosquitto
from rigs.cluster import (
    Load,
    Worker,
    add_dispatch,
    all_owned,
    district,
    epochs,
    missing,
    owners,
    processed,
    seen,
    subscribed,
    write_cluster,
)
from rigs.nats import NatsCluster
from rigs.standins import TwilioStandin
from tests.postgres import find_bin, postgres_server
from tests.support import need_service, until

pytestmark = pytest.mark.integration

PARTITIONS = 8
LEASE_S = 3.0
DEVICES = district(16, 4)
GATEWAYS = sorted({d.gateway for d in DEVICES})
CLUSTER = {"partitions": PARTITIONS, "lease_s": LEASE_S, "sweep_s": 1.0}


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if find_bin() is None:
        need_service("PostgreSQL")
    with postgres_server() as url:
        yield url


def sessions(db: sa.Engine, held: dict[int, str | None]) -> str:
    """The lease owners and the database's sessions (what a stuck takeover waits for)."""
    with db.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT pid, state, wait_event_type, wait_event, left(query, 80) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).all()
    return f"owners {held}; sessions {[tuple(r) for r in rows]}"


@pytest.fixture
def spawned() -> Iterator[list[Worker]]:
    """Workers a test started: none outlives it, whatever it failed on."""
    made: list[Worker] = []
    yield made
    for w in made:
        w.reap()


async def test_workers_share_partitions_and_survive_kill9_and_a_pause(
    broker: Mosquitto, pg_url: str, tmp_path: Path, spawned: list[Worker]
) -> None:
    write_cluster(tmp_path, [broker.url], pg_url, DEVICES, CLUSTER)
    db = open_database(pg_url)
    workers = {name: Worker(tmp_path, name) for name in ("w1", "w2", "w3")}
    spawned.extend(workers.values())
    load = Load([broker.port], DEVICES)
    try:
        for w in workers.values():
            w.start()
        # the partitions' sessions must exist before anything is published for them
        await until(lambda: all_owned(db, PARTITIONS), 60, "every partition owned")
        await until(
            lambda: set(owners(db).values()) == set(workers), 30, "partitions spread over 3"
        )
        load.thread.start()
        await until(lambda: processed(db) > 300, 30, "the first checkpoints")

        # kill -9 one worker: its partitions move to the others
        dead = {p for p, o in owners(db).items() if o == "w1"}
        workers["w1"].kill9()
        killed_at = time.monotonic()
        await until(
            lambda: all(owners(db)[p] in ("w2", "w3") for p in dead), 20, "w1's partitions moved"
        )
        moved_s = time.monotonic() - killed_at
        assert moved_s < 15, f"handover took {moved_s:.1f} s"

        # pause w2 past its lease: w3 takes its partitions; w2 wakes, writes nothing, rejoins
        await until(lambda: "w2" in owners(db).values(), 20, "w2 to hold partitions")
        paused = {p for p, o in owners(db).items() if o == "w2"}
        before = epochs(db)
        workers["w2"].signal(signal.SIGSTOP)
        await until(
            lambda: all(owners(db)[p] == "w3" for p in paused), 60, "w2's partitions taken over",
            report=lambda: sessions(db, owners(db)),
        )  # fmt: skip
        assert all(epochs(db)[p] > before[p] for p in paused), "a takeover moves the epoch"
        workers["w2"].signal(signal.SIGCONT)
        await until(lambda: "lost to another worker" in workers["w2"].log()
                    or "its lease was taken over" in workers["w2"].log(), 30,
                    "w2 to notice it was replaced")  # fmt: skip
        workers["w1"].start()  # a restarted worker rejoins too
        await until(lambda: set(owners(db).values()) == set(workers), 60, "all three holding again")
        await until(lambda: processed(db) > load.published() // 2 + 300, 30, "load after it all")
        shown = json.loads(
            subprocess.run(
                [sys.executable, "-m", "gridalarm", "cloud", "partitions", "--config",
                 str(tmp_path / "cloud.yaml"), "--json"],
                check=True, capture_output=True, timeout=60,
            ).stdout
        )  # fmt: skip
        assert {w for w, _ in shown["workers"]} == set(workers)
        assert [p["partition"] for p in shown["partitions"]] == list(range(PARTITIONS))
        assert sum(p["gateways"] for p in shown["partitions"]) == len(GATEWAYS)
        assert sum(p["handovers"] for p in shown["partitions"]) >= PARTITIONS + len(dead)
        held = {p["partition"]: p["owner"] for p in shown["partitions"]}
        for name, w in workers.items():  # each one's metrics agree with the lease table
            mine = {p for p, o in held.items() if o == name}
            await until(lambda w=w, mine=mine: w.owned() == mine, 10, f"{name}'s metrics")  # type: ignore[misc]
    finally:
        load.close()
    try:
        total = load.published()
        await until(lambda: processed(db) >= total, 60, f"all {total} messages processed")
    finally:
        codes = {name: w.stop() for name, w in workers.items()}
    logs = {name: w.log()[-3000:] for name, w in workers.items()}
    assert codes == dict.fromkeys(workers, 0), logs
    assert processed(db) == total, "every message processed exactly once"
    trackers = seen(db)
    for gw, last in load.seqs.items():
        tracker = trackers[gw]
        assert not tracker.gaps(gw) and not tracker.lost(gw), f"{gw}: a sequence was missed"
        assert tracker.snapshot()[gw]["w"] == last, f"{gw}: every seq up to {last} seen"
    with db.connect() as conn:
        raised = conn.execute(sa.select(alarms.c.key, alarms.c.raised_ts)).all()
    db.dispose()
    assert len(raised) == len(set(raised)), "an alarm was raised twice"
    assert len(raised) == load.expected_raises(), "every alarm raised once"
    assert {partition_of(gw, PARTITIONS) for gw in GATEWAYS} <= set(range(PARTITIONS))


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsCluster]:
    if shutil.which("nats-server") is None and not Path("/usr/sbin/nats-server").exists():
        need_service("nats-server (apt-get install nats-server)")
    (tmp_path / "nats").mkdir()
    with NatsCluster(tmp_path / "nats") as c:
        yield c


async def test_workers_and_gateways_move_to_another_node_when_theirs_dies(
    nats: NatsCluster, pg_url: str, tmp_path: Path, spawned: list[Worker]
) -> None:
    # a database of its own: the module's other test left partitions and counts behind
    with postgres_server() as url:
        await _nats_node_death(nats, url, tmp_path, spawned)


async def _nats_node_death(
    nats: NatsCluster, pg_url: str, tmp_path: Path, spawned: list[Worker]
) -> None:
    urls = [f"mqtt://127.0.0.1:{port}" for port in nats.mqtt_ports]
    write_cluster(
        tmp_path, urls, pg_url, DEVICES, CLUSTER, protocol="3.1.1"
    )  # NATS speaks MQTT 3.1.1
    db = open_database(pg_url)
    workers = {name: Worker(tmp_path, name) for name in ("w1", "w2")}
    spawned.extend(workers.values())
    load = Load(nats.mqtt_ports, DEVICES)
    try:
        for w in workers.values():
            w.start()
        await until(lambda: all_owned(db, PARTITIONS), 60, "every partition owned")
        await until(lambda: set(owners(db).values()) == set(workers), 30, "spread over 2")
        # a NATS session's subscriptions take about a second each to be in place
        await until(lambda: subscribed(workers) >= PARTITIONS, 60, "every partition subscribed")
        load.thread.start()
        await until(lambda: processed(db) > 300, 60, "the first checkpoints")
        nats.kill(0)  # the node everyone is connected to
        at = processed(db)
        await until(lambda: load.reconnects > 0, 30, "the load to move to another node")
        await until(lambda: processed(db) > at + 1000, 90, "processing to go on after the death")
        for w in workers.values():
            assert w.proc is not None and w.proc.poll() is None, w.log()[-3000:]
    finally:
        load.close()
    try:
        total = load.published()
        await until(
            lambda: processed(db) >= total, 90, f"all {total} messages processed",
            report=lambda: missing(db, load),
        )  # fmt: skip
    finally:
        codes = {name: w.stop() for name, w in workers.items()}
    assert codes == dict.fromkeys(workers, 0), {n: w.log()[-3000:] for n, w in workers.items()}
    assert processed(db) == total, "every message processed exactly once"
    trackers = seen(db)
    for gw, last in load.seqs.items():
        assert trackers[gw].snapshot()[gw]["w"] == last, f"{gw}: every seq up to {last} seen"
        assert not trackers[gw].gaps(gw), f"{gw}: a sequence was missed"
    with db.connect() as conn:
        raised = conn.execute(sa.select(alarms.c.key, alarms.c.raised_ts)).all()
    db.dispose()
    assert len(raised) == len(set(raised)) == load.expected_raises(), "every alarm raised once"


def sms_ledger(db: sa.Engine) -> tuple[list[tuple[int, int]], dict[int, int], set[str], int]:
    """(every step's (alarm, seq), step audit events per alarm, ids of SMS sent, unfinished
    messages) from the lifecycle tables."""
    with db.connect() as conn:
        steps = [tuple(r) for r in conn.execute(
            sa.select(escalation_steps.c.alarm_id, escalation_steps.c.seq))]  # fmt: skip
        audited = collections.Counter(
            conn.execute(
                sa.select(alarm_events.c.alarm_id).where(
                    alarm_events.c.kind.in_(("notified", "escalated", "no_targets"))
                )
            ).scalars()
        )
        sent = set(
            conn.execute(
                sa.select(outbox.c.id).where(outbox.c.state == "sent", outbox.c.channel == "sms")
            ).scalars()
        )
        unfinished = conn.execute(
            sa.select(sa.func.count()).where(outbox.c.state.in_(("pending", "sending", "held")))
        ).scalar_one()
    return steps, dict(audited), {str(s) for s in sent}, int(unfinished)


async def test_with_dispatch_each_step_and_sms_happens_once_through_a_kill9(
    broker: Mosquitto, pg_url: str, tmp_path: Path, spawned: list[Worker]
) -> None:
    with postgres_server() as url, TwilioStandin() as twilio:
        write_cluster(tmp_path, [broker.url], url, DEVICES, CLUSTER)
        env = add_dispatch(tmp_path, DEVICES, twilio)
        db = open_database(url)
        workers = {name: Worker(tmp_path, name, env) for name in ("w1", "w2", "w3")}
        spawned.extend(workers.values())
        load = Load([broker.port], DEVICES)
        try:
            for w in workers.values():
                w.start()
            await until(lambda: all_owned(db, PARTITIONS), 60, "every partition owned")
            await until(lambda: set(owners(db).values()) == set(workers), 30, "spread over 3")
            load.thread.start()
            await until(lambda: len(twilio.messages) >= 20, 60, "the first SMS")
            workers["w1"].kill9()  # mid-run: alarms, steps and sends in flight
            sent_at = len(twilio.messages)
            await until(lambda: len(twilio.messages) >= sent_at + 10, 120, "SMS after the kill")
        finally:
            load.close()
        try:
            total = load.published()
            await until(lambda: processed(db) >= total, 60, f"all {total} messages processed")
            # every chain runs to its end or its alarm clears; every message leaves
            await until(lambda: sms_ledger(db)[3] == 0, 90, "the outbox to drain")
        finally:
            codes = {name: w.stop() for name, w in workers.items() if name != "w1"}
        assert codes == {"w2": 0, "w3": 0}, {n: w.log()[-3000:] for n, w in workers.items()}
        steps, audited, sent, _ = sms_ledger(db)
        with db.connect() as conn:
            raised = dict(conn.execute(sa.select(alarms.c.id, alarms.c.state)).all())
        db.dispose()
        assert len(steps) == len(set(steps)), "an escalation step ran twice"
        per_alarm = collections.Counter(a for a, _ in steps)
        assert per_alarm == audited, "one audit event per step"
        # the flood cleared before its alarm reached the desk: nobody is told (as with one worker)
        undispatched = set(raised) - set(per_alarm)
        assert all(raised[a] == "cleared" for a in undispatched), "an open alarm was not dispatched"
        assert len(undispatched) < len(raised) / 2, "most alarms reached the desk open"
        tokens = [m["idempotency_token"] for m in twilio.messages]
        assert len(tokens) == len(set(tokens)), "the provider got one message per key"
        assert set(tokens) == sent, "every SMS sent is recorded, none lost"
