"""The lifecycle's YAML: SLAs, escalation policies, fan-out, grouping and outbox retry.

A config error names the file, the line and the field (``ConfigError``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.lifecycle.errors import ConfigError
from cloud.lifecycle.model import TargetKind
from wire import yamlconf

SEVERITIES = ("info", "warning", "danger", "critical")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sla(_Model):
    ack_s: float = Field(gt=0, description="time from raise to acknowledgement before overdue")
    on_site_s: float = Field(
        gt=0, description="time from acknowledgement to on_site before the chain re-arms"
    )
    resolve_s: float = Field(gt=0, description="time from raise to resolution before overdue")


class Step(_Model):
    wait_s: float = Field(ge=0, description="wait after the previous step (after raise: first)")
    target: TargetKind = Field(description="whom this step reaches")


class Policy(_Model):
    steps: tuple[Step, ...] = Field(description="escalation steps in order; empty: no dispatch")


class Grouping(_Model):
    window_s: float = Field(
        60.0, gt=0, description="per worker: first message at once, then one summary per window"
    )


class OutboxConfig(_Model):
    channels: tuple[str, ...] = Field(
        ("sms", "push"), min_length=1, description="default fallback order of channels"
    )
    retries_per_channel: int = Field(
        3, ge=1, description="attempts on one channel (retryable errors) before the next"
    )
    backoff_base_s: float = Field(2.0, gt=0, description="first retry delay; doubles per try")
    backoff_max_s: float = Field(300.0, gt=0, description="cap on the retry delay")
    batch: int = Field(64, ge=1, description="messages claimed and sent concurrently per pass")


class LifecycleConfig(_Model):
    sla: dict[str, Sla] = Field(description="per severity (info, warning, danger, critical)")
    fanout: dict[str, int] = Field(
        default_factory=dict, description="next_nearest targets per step, by severity (def. 1)"
    )
    policies: dict[str, Policy] = Field(description="named escalation policies")
    policy_by_severity: dict[str, str] = Field(description="severity -> policy name")
    grouping: Grouping = Field(default_factory=Grouping, description="notification grouping")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="delivery retries")
    overdue_check_max_s: float = Field(
        30.0, gt=0, description="longest wait between overdue checks (also woken by deadlines)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> LifecycleConfig:
        for where in (self.sla, self.fanout, self.policy_by_severity):
            unknown = set(where) - set(SEVERITIES)
            if unknown:
                raise ValueError(f"unknown severities {sorted(unknown)}; use {SEVERITIES}")
        missing = [s for s in SEVERITIES if s not in self.sla or s not in self.policy_by_severity]
        if missing:
            raise ValueError(f"sla and policy_by_severity need every severity; missing {missing}")
        bad = {p for p in self.policy_by_severity.values() if p not in self.policies}
        if bad:
            raise ValueError(f"policy_by_severity names unknown policies {sorted(bad)}")
        return self

    def policy(self, severity: str) -> Policy:
        return self.policies[self.policy_by_severity[severity]]

    def fan(self, severity: str) -> int:
        return self.fanout.get(severity, 1)


def load_config(path: Path) -> LifecycleConfig:
    """Read and validate the lifecycle YAML at *path*; every error with file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(yamlconf.unreadable(str(path), err).issues) from err
    try:
        return yamlconf.load_model(LifecycleConfig, text, str(path))
    except yamlconf.ConfigError as err:
        raise ConfigError(err.issues) from err
