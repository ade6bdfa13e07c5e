"""The brigade API's request and response bodies: what ``/openapi.json`` documents."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cloud.brigade.answers import BrigadeAnswer
from cloud.brigade.facts import BrigadeAlarm
from cloud.brigade.status import BrigadeStatus, Kind

KEY_MAX = 128
TEXT_MAX = 500


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


IDEMPOTENCY_FIELD = Field(
    None, min_length=1, max_length=KEY_MAX,
    description="The report's idempotency key (or the Idempotency-Key header): a repeat "
    "returns the first result and changes nothing",
)  # fmt: skip


class _Report(_Body):
    idempotency_key: str | None = IDEMPOTENCY_FIELD


class StatusReport(_Report):
    """The brigade's status on one of our alarms."""

    status: BrigadeStatus = Field(description="Where the brigade's response stands")
    disposition: str | None = Field(
        None, max_length=64, description="With closed: how it ended (their code or words)"
    )
    eta_s: int | None = Field(
        None, ge=0, le=86_400, description="Estimated time of arrival, seconds from now"
    )
    incident: str | None = Field(None, max_length=64, description="Their incident number")
    note: str | None = Field(None, max_length=TEXT_MAX, description="Free text for our side")


class AnswerReport(BrigadeAnswer):
    """The brigade's answer to an alarm we sent: a call for service, or a refusal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idempotency_key: str | None = IDEMPOTENCY_FIELD


class RequestReport(_Report):
    """A request of the brigade to our side, e.g. "ETA of the key holder?"."""

    text: str = Field(min_length=1, max_length=TEXT_MAX, description="The request, as said")


class Receipt(_Body):
    """A report as stored."""

    id: int = Field(description="Our id of the report")
    alarm_id: int = Field(description="The alarm it is about")
    kind: Kind = Field(description="status, answer or request")
    received_at: float = Field(description="When we first stored it (epoch s)")
    repeat: bool = Field(description="True when the idempotency key was seen before")


class AlarmList(_Body):
    """The brigade's alarms, newest first."""

    alarms: list[BrigadeAlarm] = Field(description="Each with its facts as they are now")


class StreamMessage(_Body):
    """The data of one stream event (event id: seq; event type: step)."""

    seq: int = Field(description="Position in the stream: resume after it with Last-Event-ID")
    message_id: str = Field(description="Idempotency key of the alarm's step")
    alarm_id: int
    step: str = Field(description="raised, confirmed, acknowledged, on_site, verified, ...")
    at: float = Field(description="When the step happened (epoch s)")
    alarm: BrigadeAlarm = Field(description="The facts as they were at that step")


class Problem(_Body):
    """Why a request was refused."""

    detail: str
