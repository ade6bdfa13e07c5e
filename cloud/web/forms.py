"""Reading small form bodies defensively: size cap, content type, known fields only."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request

MAX_FORM_BYTES = 8 * 1024  # a page action or a Twilio webhook is well under 2 KiB
MAX_FIELDS = 64  # Twilio sends ~20 fields; more is someone else
FORM_TYPE = "application/x-www-form-urlencoded"


async def read_body(request: Request, limit: int = MAX_FORM_BYTES) -> bytes:
    """The request body, refusing (413) anything above *limit* without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, "bad Content-Length")
        if int(declared) > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:  # chunked or lying Content-Length
            raise HTTPException(413, f"body larger than {limit} bytes")
    return bytes(body)


async def read_form(
    request: Request, allowed: Collection[str] | None = None, limit: int = MAX_FORM_BYTES
) -> dict[str, str]:
    """A urlencoded form as a dict; 415 for another type, 400 for repeated or unknown fields."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != FORM_TYPE:
        raise HTTPException(415, f"expected {FORM_TYPE}")
    body = await read_body(request, limit)
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, errors="strict",
            max_num_fields=MAX_FIELDS,
        )  # fmt: skip
    except (UnicodeDecodeError, ValueError) as err:
        raise HTTPException(400, "form is not UTF-8 urlencoded") from err
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise HTTPException(400, f"field {key!r} given twice")
        if allowed is not None and key not in allowed:
            raise HTTPException(400, f"unknown field {key!r}")
        form[key] = value
    return form
