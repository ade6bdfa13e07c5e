"""The lifecycle's own tables (keyed by ``alarms.id``) and its database engine.

Audit events go to the shared append-only ``alarm_events`` (one history per alarm, rules and
people together); ``channel`` and ``note`` ride in its ``detail`` JSON.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud.dbsession import engine_options
from cloud.lifecycle import rule_alarms
from cloud.lifecycle.columns import add_on_open

metadata = sa.MetaData()

lifecycle_alarms = sa.Table(
    "lifecycle_alarms",
    metadata,
    sa.Column("alarm_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("key", sa.String(160), nullable=False, index=True),
    sa.Column("rule_id", sa.String(64), nullable=False),
    sa.Column("device", sa.String(64), nullable=True),
    sa.Column("gateway", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("title_en", sa.String(200), nullable=False),
    sa.Column("title_zh", sa.String(200), nullable=False),
    sa.Column("category", sa.String(16), nullable=True),  # as in alarms: kept from the raise
    sa.Column("notify", sa.String(8), nullable=False, server_default="page"),  # page|summary|board
    sa.Column("clears", sa.String(8), nullable=False),
    sa.Column("policy", sa.String(64), nullable=False),  # fixed at raise: step indices stay valid
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("raised_at", sa.Float, nullable=False),  # wall clock when the cloud knew
    sa.Column("acknowledged_at", sa.Float, nullable=True),
    sa.Column("acknowledged_by", sa.String(64), nullable=True),
    sa.Column("on_site_at", sa.Float, nullable=True),
    sa.Column("resolved_at", sa.Float, nullable=True),
    sa.Column("resolved_by", sa.String(64), nullable=True),
    sa.Column("ack_due_at", sa.Float, nullable=False),
    sa.Column("resolve_due_at", sa.Float, nullable=False),
    sa.Column("on_site_due_at", sa.Float, nullable=True),  # ack timeout: re-arms the chain
    sa.Column("overdue", sa.Boolean, nullable=False, default=False),  # sticky: SLA breached
    sa.Column("overdue_ack", sa.Boolean, nullable=False, default=False),
    sa.Column("overdue_resolve", sa.Boolean, nullable=False, default=False),
    # the escalation chain: what runs next and when (the truth a restart recovers from)
    sa.Column("next_seq", sa.Integer, nullable=False, default=0),
    sa.Column("next_index", sa.Integer, nullable=True),  # None: chain stopped or exhausted
    sa.Column("next_due_at", sa.Float, nullable=True),
    sa.Index("lifecycle_by_device_outcome", "device", "outcome"),
)
add_on_open(lifecycle_alarms, "category", "notify")

escalation_steps = sa.Table(
    "escalation_steps",
    metadata,
    # (alarm_id, seq) is the step's idempotency key: a second run of the same step conflicts
    sa.Column("alarm_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("step_index", sa.Integer, nullable=False),
    sa.Column("target", sa.String(32), nullable=False),
    sa.Column("workers", sa.Text, nullable=False),  # JSON list
    sa.Column("done_at", sa.Float, nullable=False),
)

outbox = sa.Table(
    "notification_outbox",
    metadata,
    sa.Column("id", sa.String(96), primary_key=True),  # idempotency key towards the provider
    sa.Column("alarm_id", sa.Integer, nullable=True, index=True),  # None for summaries
    sa.Column("worker_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # alert | summary
    sa.Column("locale", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("link", sa.String(500), nullable=False),
    sa.Column("channels", sa.Text, nullable=False),  # JSON fallback order
    sa.Column("channel_index", sa.Integer, nullable=False, default=0),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("channel_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("errors", sa.Text, nullable=False, default="[]"),  # JSON [channel, error]
    sa.Column("summary_id", sa.String(96), nullable=True, index=True),
    sa.Column("alarm_ids", sa.Text, nullable=False, default="[]"),  # what a summary carries
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("sent_at", sa.Float, nullable=True),
    sa.Column("receipt", sa.String(128), nullable=True),
    # the cloud worker whose claim made the row ``sending``: a dead worker's claims go back
    # to ``pending`` (the live ones hold theirs while the provider answers)
    sa.Column("claimed_by", sa.String(128), nullable=True),
    # a claimer died mid-send: the provider may have the message, so it goes out again under
    # its key (the provider keeps it once) and an alarm's clearing does not cancel it
    sa.Column("unsure", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Index("outbox_due", "state", "next_attempt_at"),
    sa.Index("outbox_held", "state", "worker_id"),
)
add_on_open(outbox, "claimed_by", "unsure")

outbox_windows = sa.Table(
    "notification_windows",
    metadata,
    sa.Column("worker_id", sa.String(64), primary_key=True),
    sa.Column("window_ends_at", sa.Float, nullable=False),
    sa.Column("summaries", sa.Integer, nullable=False, default=0),  # names summary ids
)


def open_lifecycle_db(url: str) -> Engine:
    """An engine for the lifecycle's writes on the cloud database, tables created.

    SQLite: WAL, and every transaction begins IMMEDIATE — our transactions read then write,
    and a deferred one would fail (SQLITE_BUSY_SNAPSHOT, not retried) when ingest commits
    between the read and the write. Waiting for the write lock up front avoids that.
    """
    db = sa.create_engine(url, future=True, **engine_options(url))
    if db.dialect.name == "sqlite":

        @sa.event.listens_for(db, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        @sa.event.listens_for(db, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    rule_alarms.metadata.create_all(db)  # the alarms and alarm_events we read and append to
    metadata.create_all(db)
    return db


class Borrowed:
    """How many connections are out of *db*'s pool, to dispose of it only once they are back.

    A task cancelled while its database call runs in a thread (``asyncio.to_thread``) leaves
    the thread running; disposing of the engine under it would orphan its connection (never
    closed). ``close`` waits, a bounded while, for such calls to end first.
    """

    def __init__(self, db: Engine) -> None:
        self.db = db
        self._out = 0
        self._cond = threading.Condition()
        sa.event.listen(db, "checkout", self._checkout)
        sa.event.listen(db, "checkin", self._checkin)

    def _checkout(self, *_args: Any) -> None:
        with self._cond:
            self._out += 1

    def _checkin(self, *_args: Any) -> None:
        with self._cond:
            self._out -= 1
            self._cond.notify_all()

    def close(self, wait_s: float = 5.0) -> None:
        """Dispose of the engine once its connections are back (or *wait_s* has passed)."""
        with self._cond:
            self._cond.wait_for(lambda: self._out <= 0, timeout=wait_s)
        self.db.dispose()
