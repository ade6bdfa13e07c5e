"""The demo's lifecycle runs on the morning's clock, and stays a valid lifecycle."""

from __future__ import annotations

import yaml

from cloud.lifecycle import LifecycleConfig
from gridalarm.demo_config import MIN_SLA_S, paced_lifecycle


def lifecycle(speed: float) -> LifecycleConfig:
    return LifecycleConfig.model_validate(yaml.safe_load(paced_lifecycle(speed)))


def test_speed_divides_the_waits_and_keeps_a_floor_under_the_slas() -> None:
    real, fast = lifecycle(1), lifecycle(60)
    assert real.sla["critical"].ack_s == 120
    assert fast.sla["critical"].ack_s == MIN_SLA_S, "a person always gets the floor"
    assert fast.sla["warning"].resolve_s == 86400 / 60
    fire_real, fire_fast = real.policies["fire"].steps, fast.policies["fire"].steps
    assert [s.wait_s / 60 for s in fire_real] == [s.wait_s for s in fire_fast]
    assert fast.grouping.window_s == 1.0
    assert fast.outbox == real.outbox, "delivery retries are not the morning's business"
