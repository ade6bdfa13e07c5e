"""Errors of the installer tools; ``exit_code`` is what the CLI exits with."""

from __future__ import annotations

from edge.errors import EdgeError

EXIT_OK = 0
EXIT_DEVICE = 1  # a device or bus problem: no answer, bad frame, port missing
EXIT_USAGE = 2  # bad arguments or a config error
EXIT_NOT_RUNNING = 3  # the gateway is not running or the broker is unreachable


class InstallerError(EdgeError):
    """A problem an installer can act on; the message says what to do."""

    exit_code = EXIT_DEVICE


class UsageError(InstallerError):
    """Arguments or files that do not fit together (e.g. a file that would be overwritten)."""

    exit_code = EXIT_USAGE


class GatewayNotRunningError(InstallerError):
    """No fresh status file: the gateway is stopped, hung or writes elsewhere."""

    exit_code = EXIT_NOT_RUNNING


class BrokerUnreachableError(InstallerError):
    """The broker refused or did not answer."""

    exit_code = EXIT_NOT_RUNNING


class CommissionTimeoutError(InstallerError):
    """No test event reached the broker in time."""

    exit_code = EXIT_DEVICE
