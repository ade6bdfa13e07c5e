"""The record / replay tools' MQTT connection: the one module here that imports aiomqtt.

A recorder only listens and a re-publisher only sends, so aiomqtt's early acknowledgement
costs nothing here: a killed recorder loses at most the last second of
a file that is a copy anyway.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiomqtt

from replay.errors import BrokerUnreachable, ReplayError

CONNECT_TIMEOUT_S = 10.0
Client = aiomqtt.Client
MqttError = aiomqtt.MqttError


def parse_broker(url: str) -> tuple[str, int]:
    """(host, port) of ``mqtt://HOST[:PORT]`` (``tcp://`` too); ReplayError otherwise."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ReplayError(f"broker URL {url!r}: expected mqtt://HOST[:PORT]")
    try:
        port = parts.port or 1883
    except ValueError:
        raise ReplayError(f"broker URL {url!r}: bad port") from None
    return parts.hostname, port


@contextlib.asynccontextmanager
async def connect(url: str, role: str) -> AsyncIterator[aiomqtt.Client]:
    """A connected client with a throw-away session; BrokerUnreachable if it cannot connect."""
    host, port = parse_broker(url)
    client = aiomqtt.Client(
        host,
        port,
        identifier=f"gridalarm-{role}-{os.getpid()}",
        clean_session=True,
        timeout=CONNECT_TIMEOUT_S,
        max_inflight_messages=1000,
    )
    try:
        await client.__aenter__()
    except MqttError as err:
        raise BrokerUnreachable(f"cannot connect to {url}: {err}") from err
    try:
        yield client
    finally:
        with contextlib.suppress(MqttError):
            await client.__aexit__(None, None, None)
