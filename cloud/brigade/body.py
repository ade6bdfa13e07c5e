"""Our JSON webhook body: one alarm step for one brigade, with the facts of that moment.

The body of a message is the same bytes on every retry (the facts are the step's snapshot,
the times are the step's), so a brigade may compare a retry with what it has. Its JSON
schema is in ``cloud/brigade/webhook.schema.json`` (``python -m cloud.brigade.body``
writes it; a test keeps it current), and WEBHOOKS.md beside it says the rest.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from cloud.brigade.facts import BrigadeAlarm, MsgType, msg_type
from cloud.brigade.feed import message_id
from cloud.lifecycle.model import FeedStep

CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Message:
    """One queued message as the sender claimed it."""

    seq: int
    brigade_id: str
    alarm_id: int
    step: FeedStep
    message_id: str  # the idempotency key
    facts: str  # BrigadeAlarm JSON, as it was at the step
    created_at: float  # when the step happened
    alert_created_at: float  # when the alarm's Alert (its raise) was queued
    attempts: int  # this one included


class WebhookBody(BaseModel):
    """One step of a fire alarm, pushed to a brigade (header ``Idempotency-Key`` =
    ``message_id``; a retry carries the same key and the same body)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: str = Field(description="Stable per alarm and step: the idempotency key")
    msg_type: MsgType = Field(description="Alert (first), Update, or Cancel (false alarm)")
    step: FeedStep = Field(description="What happened: raised, confirmed, on_site, ...")
    sent: str = Field(description="When the step happened (ISO 8601 with offset)")
    created_at: float = Field(description="The same instant as epoch seconds")
    references: str | None = Field(
        description="The Alert's message_id, on an Update or a Cancel; null on the Alert"
    )
    brigade: str = Field(description="The brigade this copy is for")
    alarm: BrigadeAlarm = Field(description="What a crew needs, as it was at the step")


def iso(ts: float) -> str:
    """*ts* as ISO 8601 at China's offset, to the second (CAP forbids 'Z')."""
    tz = dt.timezone(dt.timedelta(hours=8))
    return dt.datetime.fromtimestamp(int(ts), tz).isoformat()


def webhook_body(m: Message) -> WebhookBody:
    kind = msg_type(m.step)
    return WebhookBody(
        message_id=m.message_id, msg_type=kind, step=m.step, sent=iso(m.created_at),
        created_at=m.created_at,
        references=None if kind is MsgType.ALERT else message_id(m.alarm_id, FeedStep.RAISED),
        brigade=m.brigade_id, alarm=BrigadeAlarm.model_validate_json(m.facts),
    )  # fmt: skip


def encode_json(m: Message) -> bytes:
    """The JSON body's bytes (sorted keys: the same message, the same bytes)."""
    data = webhook_body(m).model_dump(mode="json")
    return json.dumps(data, sort_keys=True, ensure_ascii=False).encode()


def schema() -> str:
    return json.dumps(WebhookBody.model_json_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(schema())
