"""Compressed answers for the console's big bodies (Leaflet, plotly.js, the map's devices):
a wall screen on a slow office network loads the map in a fraction of the bytes."""

from __future__ import annotations

import gzip

from fastapi import Request
from fastapi.responses import Response

MIN_BYTES = 1024  # below this, compression costs more than it saves


def accepts_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "").lower()


def compressed(
    request: Request, body: bytes, media_type: str, headers: dict[str, str],
    packed: bytes | None = None,
) -> Response:  # fmt: skip
    """*body* as is, or gzip-compressed (*packed*, if already made) when the client takes it."""
    headers = {**headers, "Vary": "Accept-Encoding"}
    if len(body) < MIN_BYTES or not accepts_gzip(request):
        return Response(body, media_type=media_type, headers=headers)
    data = packed if packed is not None else gzip.compress(body, compresslevel=6)
    return Response(data, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})
