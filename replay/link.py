"""The record / replay tools' MQTT connection: the one module here that imports aiomqtt.

A recorder only listens and a re-publisher only sends, so aiomqtt's early acknowledgement
costs nothing here: a killed recorder loses at most the last second of
a file that is a copy anyway.

``mqtts://`` is MQTT over TLS, as production brokers speak it: the broker's certificate is
checked against a CA file (or the system's trust store) and its host name, and a client
certificate is presented when the broker asks for one (mutual TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiomqtt

from replay.errors import BrokerUnreachable, ReplayError

CONNECT_TIMEOUT_S = 10.0
Client = aiomqtt.Client
MqttError = aiomqtt.MqttError
_DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """TLS for an ``mqtts://`` broker: whom to trust, and who we are if it asks."""

    ca_file: Path | None = None  # None: the system's trust store
    cert_file: Path | None = None  # client certificate (PEM), with key_file
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where a broker is, from its URL."""

    host: str
    port: int
    tls: bool


def parse_broker(url: str) -> BrokerAddress:
    """``mqtt://HOST[:PORT]`` (``tcp://`` too) or ``mqtts://HOST[:PORT]`` (``ssl://`` too,
    port 8883 by default); ReplayError otherwise."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ReplayError(f"broker URL {url!r}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ReplayError(f"broker URL {url!r}: bad port") from None
    return BrokerAddress(parts.hostname, port, parts.scheme in ("mqtts", "ssl"))


def tls_context(tls: BrokerTls) -> ssl.SSLContext:
    """A client context that verifies the broker; ReplayError naming a file it cannot use."""
    if (tls.cert_file is None) != (tls.key_file is None):
        given, missing = ("--cert", "--key") if tls.key_file is None else ("--key", "--cert")
        raise ReplayError(f"a client certificate needs both files: {given} without {missing}")
    try:
        context = ssl.create_default_context(
            cafile=str(tls.ca_file) if tls.ca_file is not None else None
        )
        if tls.cert_file is not None and tls.key_file is not None:
            context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as err:
        raise ReplayError(f"TLS files ({_files(tls)}): {err}") from err
    return context


@contextlib.asynccontextmanager
async def connect(
    url: str, role: str, tls: BrokerTls | None = None
) -> AsyncIterator[aiomqtt.Client]:
    """A connected client with a throw-away session; BrokerUnreachable if it cannot connect.

    *tls* applies to ``mqtts://`` only (None there: the system's trust store, no client
    certificate); given with a plain URL it is refused rather than silently ignored."""
    address = parse_broker(url)
    if tls is not None and not address.tls:
        raise ReplayError(f"TLS files given for {url!r}: use mqtts://HOST[:PORT]")
    context = tls_context(tls or BrokerTls()) if address.tls else None
    if context is not None:
        await _handshake(address, context, url)
    client = aiomqtt.Client(
        address.host,
        address.port,
        identifier=f"gridalarm-{role}-{os.getpid()}",
        clean_session=True,
        timeout=CONNECT_TIMEOUT_S,
        max_inflight_messages=1000,
        tls_context=context,
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


async def _handshake(address: BrokerAddress, context: ssl.SSLContext, url: str) -> None:
    """Check the broker's certificate on a connection of our own, closed at once.

    paho leaves the socket of a failed handshake for the garbage collector to close (with a
    ResourceWarning), so a broker we cannot trust is found here, before paho meets it."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            _, writer = await asyncio.open_connection(address.host, address.port, ssl=context)
    except (OSError, TimeoutError) as err:  # ssl.SSLError is an OSError
        raise BrokerUnreachable(f"cannot connect to {url}: {err}") from err
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _files(tls: BrokerTls) -> str:
    named = (("CA", tls.ca_file), ("cert", tls.cert_file), ("key", tls.key_file))
    return ", ".join(f"{what} {path}" for what, path in named if path is not None)
