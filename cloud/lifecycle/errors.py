"""Errors of the alarm lifecycle; callers can act on each subclass."""

from __future__ import annotations

from wire import yamlconf


class LifecycleError(Exception):
    """Root of the lifecycle's errors."""


class UnknownAlarm(LifecycleError):
    """No alarm with that id is known to the lifecycle."""

    def __init__(self, alarm_id: int) -> None:
        super().__init__(f"alarm {alarm_id}: unknown to the lifecycle")
        self.alarm_id = alarm_id


class IllegalTransition(LifecycleError):
    """The action is not allowed from the alarm's current state."""

    def __init__(self, alarm_id: int, state: str, action: str, why: str = "") -> None:
        text = f"alarm {alarm_id}: cannot {action} from state {state}"
        super().__init__(f"{text}: {why}" if why else text)
        self.alarm_id = alarm_id
        self.state = state
        self.action = action


class ConfigError(LifecycleError, yamlconf.ConfigError):
    """The lifecycle YAML is invalid; ``issues`` name the file, line and field of each."""


class DeliveryError(LifecycleError):
    """A Sender could not deliver one message; ``retryable`` says whether trying again helps.

    The channel sender (cloud.dispatch.senders) translates ``cloud.notify``'s
    ChannelError(retryable) into this.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
