"""A brigade's answer to an alarm: accepted (their incident number) or rejected (ASAP's reasons).

It comes in the 2xx response to our webhook or over the brigade API; both call
``record_answer``, which stores it on the brigade's message, appends it to the alarm's audit
trail and says whether the duty commander must be paged (a rejection). The caller pages
(``AlarmDesk.page_commander`` with ``rejection_token``): paging is the desk's, once per token.

A webhook's answer body (JSON, also for CAP brigades)::

    {"answer": "accepted", "incident": "F-123"}
    {"answer": "rejected", "reason": "not_in_area", "text": "outside our district"}
"""

from __future__ import annotations

import enum
import json
from typing import Self

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.engine import Connection

from cloud.brigade.feed import brigade_messages
from cloud.lifecycle.audit import Event, append
from cloud.lifecycle.tables import lifecycle_alarms

AUDIT_KIND = "brigade_answer"
PAGE_KIND = "brigade_rejected"


class Answer(enum.StrEnum):
    ACCEPTED = "accepted"  # a call for service was created
    REJECTED = "rejected"


class RejectReason(enum.StrEnum):
    """ASAP-to-PSAP's reasons for refusing an alarm."""

    NOT_IN_AREA = "not_in_area"
    UNKNOWN_EVENT = "unknown_event"
    TOO_OLD = "too_old"
    OTHER = "other"


class BrigadeAnswer(BaseModel):
    """What the brigade's dispatch system made of an alarm."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answer: Answer = Field(description="accepted: a call for service exists; rejected: refused")
    incident: str | None = Field(
        default=None, max_length=64, description="Their incident number (accepted)"
    )
    reason: RejectReason | None = Field(default=None, description="Why refused (rejected)")
    text: str | None = Field(default=None, max_length=500, description="Free text for people")

    @model_validator(mode="after")
    def _reason_with_rejection(self) -> Self:
        if self.answer is Answer.REJECTED and self.reason is None:
            raise ValueError("a rejection needs a reason")
        return self


def parse_answer(body: bytes) -> BrigadeAnswer | None:
    """The answer in a webhook response body; None when it carries none (an empty 200)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or "answer" not in data:
        return None
    try:
        return BrigadeAnswer.model_validate(data)
    except ValidationError:
        return None


def rejection_token(brigade_id: str) -> str:
    """``page_commander``'s token: the commander is paged once per brigade and alarm."""
    return f"rej-{brigade_id}"


def record_answer(
    conn: Connection,
    brigade_id: str,
    alarm_id: int,
    answer: BrigadeAnswer,
    *,
    now: float,
    message_id: str | None = None,
) -> bool:
    """Store *answer* on the brigade's message (*message_id*, else its latest of the alarm),
    audit it; True when the duty commander must be paged (a rejection)."""
    m = brigade_messages
    where = sa.and_(m.c.brigade_id == brigade_id, m.c.alarm_id == alarm_id)
    if message_id is not None:
        where = sa.and_(where, m.c.message_id == message_id)
    seq = conn.execute(sa.select(sa.func.max(m.c.seq)).where(where)).scalar()
    detail = answer.model_dump(mode="json", exclude_none=True, exclude={"answer"})
    if seq is not None:
        conn.execute(
            sa.update(m).where(m.c.seq == seq).values(
                answer=answer.answer.value, answer_detail=json.dumps(detail, ensure_ascii=False)
            )
        )  # fmt: skip
    la = lifecycle_alarms
    row = conn.execute(sa.select(la.c.key, la.c.severity).where(la.c.alarm_id == alarm_id)).first()
    if row is not None:
        event_detail = {"brigade": brigade_id, "answer": answer.answer.value, **detail}
        if message_id is not None:
            event_detail["message_id"] = message_id
        append(conn, [Event(alarm_id, row.key, row.severity, AUDIT_KIND,
                            f"brigade:{brigade_id}", now, event_detail)])  # fmt: skip
    return answer.answer is Answer.REJECTED
