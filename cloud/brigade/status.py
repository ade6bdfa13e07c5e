"""The brigade's back-channel: its status, its answer and its requests on one of our alarms.

Each report is one row of ``brigade_reports`` and one event in the alarm's audit trail
(actor ``brigade:<id>``), written in one transaction; an answer is stored as a webhook's
answer is (``answers.record_answer``: on the brigade's message, and audited). A report
carries the brigade's idempotency key: the same key again returns the first report and
changes nothing; the same key with another body is refused (the brigade's system has a bug
we must not paper over).
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloud.brigade import directory
from cloud.brigade.answers import Answer, BrigadeAnswer, RejectReason, record_answer
from cloud.brigade.area import visible
from cloud.lifecycle.audit import Event, append
from cloud.lifecycle.tables import lifecycle_alarms

metadata = directory.metadata


class Kind(enum.StrEnum):
    STATUS = "status"
    ANSWER = "answer"
    REQUEST = "request"

    @property
    def audit_kind(self) -> str:
        return f"brigade_{self.value}"  # <= 16 characters: alarm_events.kind's width


class BrigadeStatus(enum.StrEnum):
    """Where the brigade's response stands (ASAP's dispatch updates)."""

    RECEIVED = "received"
    DISPATCHED = "dispatched"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    CLOSED = "closed"


brigade_reports = sa.Table(
    "brigade_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("brigade_id", sa.String(64), nullable=False),
    sa.Column("alarm_id", sa.Integer, nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("idempotency_key", sa.String(128), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),  # of the report: a reused key shows
    sa.Column("report", sa.Text, nullable=False),  # JSON of Report
    sa.Column("received_at", sa.Float, nullable=False),
    sa.UniqueConstraint("brigade_id", "idempotency_key", name="one_report_per_key"),
)


@dataclass(frozen=True, slots=True)
class Report:
    """What the brigade said; the fields its kind does not use stay None."""

    kind: Kind
    status: BrigadeStatus | None = None
    disposition: str | None = None
    eta_s: int | None = None
    incident: str | None = None
    answer: Answer | None = None
    reason: RejectReason | None = None
    text: str | None = None  # a note on a status or answer; the request itself

    def as_json(self) -> str:
        body = {k: v for k, v in asdict(self).items() if v is not None}
        return json.dumps(body, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Recorded:
    """A stored report; ``first`` is False when the key was seen before (nothing changed)."""

    id: int
    brigade_id: str
    alarm_id: int
    report: Report
    received_at: float
    first: bool


class NotVisible(LookupError):
    """No such alarm in the brigade's area (said as 404, like an unknown alarm)."""


class KeyReused(ValueError):
    """The idempotency key came before with another report."""


def create_status_tables(db: Engine) -> None:
    metadata.create_all(db)


def record(
    db: Engine, brigade: directory.Brigade, alarm_id: int, report: Report, *, key: str,
    now: float,
) -> Recorded:  # fmt: skip
    """Store *report* once per (*brigade*, *key*) with its audit event; see the module."""
    body = report.as_json()
    digest = hashlib.sha256(body.encode()).hexdigest()
    r = brigade_reports
    with db.begin() as conn:
        seen = conn.execute(
            sa.select(r).where(r.c.brigade_id == brigade.id, r.c.idempotency_key == key)
        ).first()
        if seen is not None:
            if seen.digest != digest or seen.alarm_id != alarm_id:
                raise KeyReused(key)
            return _recorded(seen, first=False)
        if not visible(conn, brigade, alarm_id):
            raise NotVisible(alarm_id)
        new_id = conn.execute(
            sa.insert(r).values(
                brigade_id=brigade.id, alarm_id=alarm_id, kind=report.kind.value,
                idempotency_key=key, digest=digest, report=body, received_at=now,
            )
        ).inserted_primary_key  # fmt: skip
        if report.kind is Kind.ANSWER and report.answer is not None:
            answer = BrigadeAnswer(answer=report.answer, incident=report.incident,
                                   reason=report.reason, text=report.text)  # fmt: skip
            record_answer(conn, brigade.id, alarm_id, answer, now=now)  # on its message, audited
        else:
            _audit(conn, brigade, alarm_id, report, key=key, now=now)
    assert new_id is not None
    return Recorded(int(new_id[0]), brigade.id, alarm_id, report, now, first=True)


def _audit(
    conn: Connection, brigade: directory.Brigade, alarm_id: int, report: Report, *, key: str,
    now: float,
) -> None:  # fmt: skip
    la = lifecycle_alarms
    row = conn.execute(sa.select(la.c.key, la.c.severity).where(la.c.alarm_id == alarm_id)).one()
    detail: dict[str, Any] = json.loads(report.as_json())
    detail.update(brigade=brigade.id, brigade_name=brigade.name, idempotency_key=key)
    detail.setdefault("note", report.text)
    event = Event(alarm_id, row.key, row.severity, report.kind.audit_kind,
                  f"brigade:{brigade.id}", now, detail)  # fmt: skip
    append(conn, [event])


def for_alarm(conn: Connection, alarm_id: int) -> list[tuple[str, Recorded]]:
    """Every brigade report on *alarm_id*, oldest first, with the brigade's name."""
    r, b = brigade_reports, directory.brigades
    rows = conn.execute(
        sa.select(r, b.c.name.label("brigade_name"))
        .join(b, b.c.id == r.c.brigade_id)
        .where(r.c.alarm_id == alarm_id)
        .order_by(r.c.received_at, r.c.id)
    ).all()
    return [(row.brigade_name, _recorded(row, first=False)) for row in rows]


def _recorded(row: Any, *, first: bool) -> Recorded:
    data = json.loads(row.report)
    report = Report(
        kind=Kind(data["kind"]),
        status=BrigadeStatus(data["status"]) if "status" in data else None,
        disposition=data.get("disposition"), eta_s=data.get("eta_s"),
        incident=data.get("incident"),
        answer=Answer(data["answer"]) if "answer" in data else None,
        reason=RejectReason(data["reason"]) if "reason" in data else None,
        text=data.get("text"),
    )  # fmt: skip
    return Recorded(row.id, row.brigade_id, row.alarm_id, report, row.received_at, first)
