"""Which person's action is allowed from which state: a pure table, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from cloud.lifecycle.errors import IllegalTransition
from cloud.lifecycle.model import OPEN_STATES, WAITING_STATES, Outcome, State


@dataclass(frozen=True, slots=True)
class Decision:
    to: State
    changed: bool
    detail: str


def acknowledge(alarm_id: int, state: State, by: str | None) -> Decision:
    if state in WAITING_STATES:
        return Decision(State.ACKNOWLEDGED, True, "acknowledged")
    if state in (State.ACKNOWLEDGED, State.ON_SITE):
        return Decision(state, False, f"already acknowledged by {by}")
    raise IllegalTransition(alarm_id, state, "acknowledge", "it is resolved")


def arrive(alarm_id: int, state: State) -> Decision:
    if state is State.ACKNOWLEDGED:
        return Decision(State.ON_SITE, True, "on site")
    if state is State.ON_SITE:
        return Decision(state, False, "already on site")
    why = "it is resolved" if state is State.RESOLVED else "acknowledge it first"
    raise IllegalTransition(alarm_id, state, "arrive", why)


def resolve(alarm_id: int, state: State, current: str | None, outcome: Outcome) -> Decision:
    if state in OPEN_STATES:
        return Decision(State.RESOLVED, True, f"resolved as {outcome}")
    if current == outcome:
        return Decision(state, False, f"already resolved as {outcome}")
    raise IllegalTransition(alarm_id, state, f"resolve as {outcome}", f"resolved as {current}")
