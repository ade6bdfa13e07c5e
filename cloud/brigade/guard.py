"""The brigade API's door: API key, scope, body size and request signature, in that order.

Reads need a key with ``alarms:read``; writes need ``status:write``, a body of at most
``MAX_BODY_BYTES`` and a fresh HMAC signature by the brigade's signing secret (a replayed
request is old, so it fails the timestamp). Every refusal is logged once, with the key id and
the reason, never the token; the caller learns only 401, 403 or 413. Nothing is read from
the database but the key and the secret before a request is admitted, so a refused one
changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fastapi import HTTPException, Request
from sqlalchemy.engine import Engine

from cloud.brigade import directory
from cloud.brigade.directory import Brigade, authenticate
from cloud.brigade.keys import Scope, key_id_of
from cloud.brigade.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # a status report is well under 2 KiB
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gridalarm brigade"'}


class Guard:
    """Admits a request for one brigade, or refuses it (HTTPException) and logs why once."""

    def __init__(self, db: Engine, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    async def admit(self, request: Request) -> Brigade:
        """The brigade the request is from; its body, if any, is read and kept on it."""
        write = request.method not in ("GET", "HEAD")
        token = _bearer(request)
        key_id = key_id_of(token) or "-"
        if write:
            _declared_size(request, key_id)
        scope = Scope.STATUS_WRITE if write else Scope.ALARMS_READ
        brigade, refusal = await asyncio.to_thread(
            authenticate, self._db, token, scope, self._clock()
        )
        if refusal is not None or brigade is None:
            reason = refusal.value if refusal is not None else "unknown"
            status = refusal.status if refusal is not None else 401
            raise _refuse(request, key_id, reason, status)
        if write:
            body = await _read(request, key_id)
            await self._signed(request, brigade, key_id, body)
            request._body = body  # Starlette's own cache: the route parses it
        return brigade

    async def still_admitted(self, request: Request) -> bool:
        """Whether the request's key still reads (a long-lived stream asks again)."""
        brigade, refusal = await asyncio.to_thread(
            authenticate, self._db, _bearer(request), Scope.ALARMS_READ, self._clock()
        )
        if refusal is not None or brigade is None:
            key_id = key_id_of(_bearer(request)) or "-"
            _refuse(request, key_id, f"stream ended: {refusal}", 401)  # logged once, here
            return False
        return True

    async def _signed(self, request: Request, brigade: Brigade, key_id: str, body: bytes) -> None:
        secret = await asyncio.to_thread(self._secret, brigade.id)
        bad = verify(
            [secret], request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER), body, self._clock(),
        )  # fmt: skip
        if bad is not None:
            raise _refuse(request, key_id, f"signature {bad.value}", 401)

    def _secret(self, brigade_id: str) -> str:
        with self._db.begin() as conn:
            return directory.signing_secret(conn, brigade_id)


def _bearer(request: Request) -> str:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""


def _refuse(request: Request, key_id: str, reason: str, status: int) -> HTTPException:
    peer = request.client.host if request.client else "?"
    logger.warning("brigade API: %s %s refused %d: key %s, %s, from %s", request.method,
                   request.url.path, status, key_id, reason, peer)  # fmt: skip
    text = {
        400: "bad Content-Length",
        401: "a valid, signed brigade API key is required",
        403: "this key may not do that",
        413: f"body larger than {MAX_BODY_BYTES} bytes",
    }
    return HTTPException(status, text.get(status, "refused"),
                         headers=CHALLENGE if status == 401 else None)  # fmt: skip


def _declared_size(request: Request, key_id: str) -> None:
    declared = request.headers.get("content-length")
    if declared is None:
        return
    if not declared.isdigit():
        raise _refuse(request, key_id, "bad Content-Length", 400)
    if int(declared) > MAX_BODY_BYTES:
        raise _refuse(request, key_id, f"Content-Length {declared}", 413)


async def _read(request: Request, key_id: str) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:  # chunked, or a Content-Length that lied
            raise _refuse(request, key_id, "streamed body over the limit", 413)
    return bytes(body)
