"""The console's settings: ``dispatch.console`` in the cloud config (cloud.config)."""

from __future__ import annotations

from cloud.config import ConsoleConfig

__all__ = ["ConsoleConfig"]
