"""The registry over HTTP: ``GET``/``PUT /api/registry/{file}``, what ``gridalarm cloud``
exports and imports, behind a bearer admin token.

Without a configured token the routes are not mounted at all (404). A bad file changes
nothing and is answered 422 with every ``file:line: field: message`` issue.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from cloud.web.forms import read_body
from cloud.web.nesting import MAX_JSON_DEPTH, too_deep
from cloud.web.protocols import RegistryDesk, RegistryFile
from wire.yamlconf import ConfigError

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 8 * 1024 * 1024  # the demo district's largest file is ~0.3 MB
CSV_TYPES = ("text/csv",)
GEOJSON_TYPES = ("application/geo+json", "application/json")
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def router(desk: RegistryDesk, admin_token: SecretStr) -> APIRouter:
    """The registry API over *desk*; every request must carry *admin_token*."""
    r = APIRouter(prefix="/api/registry")
    expected = admin_token.get_secret_value().encode("utf-8")

    def authorize(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # compare_digest on bytes: constant time whatever the (possibly non-ASCII) input.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8"), expected
        ):
            logger.warning("registry API: bad or missing admin token from %s", _peer(request))
            raise HTTPException(
                401, "a valid admin bearer token is required",
                headers={"WWW-Authenticate": 'Bearer realm="gridalarm registry"'},
            )  # fmt: skip

    @r.get("/{name}", name="registry_export")
    async def export(request: Request, name: str) -> Response:
        authorize(request)
        file = _file(name)
        text = await desk.export_registry(file)
        headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="{file.filename}"'}
        return Response(text, media_type=_media_types(file)[0], headers=headers)

    @r.put("/{name}", name="registry_import")
    async def import_(request: Request, name: str) -> Response:
        authorize(request)
        file = _file(name)
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media not in _media_types(file):
            raise HTTPException(415, f"{file.filename}: expected {' or '.join(_media_types(file))}")
        body = await read_body(request, MAX_FILE_BYTES)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as err:
            return _issues(file, [f"{file.filename}: not UTF-8 text (byte {err.start})"])
        if file is RegistryFile.GRIDS and too_deep(text):
            return _issues(file, [f"{file.filename}: JSON nested deeper than {MAX_JSON_DEPTH}"])
        try:
            count = await desk.import_registry(file, text)
        except ConfigError as err:
            return _issues(file, [str(i) for i in err.issues])
        logger.info("registry API: %s imported, %d rows, from %s", file, count, _peer(request))
        return JSONResponse({"file": file.filename, "imported": count}, headers=NO_STORE)

    return r


def _file(name: str) -> RegistryFile:
    try:
        return RegistryFile(name)
    except ValueError:
        known = ", ".join(f.value for f in RegistryFile)
        raise HTTPException(404, f"no registry file {name!r}; known: {known}") from None


def _media_types(file: RegistryFile) -> tuple[str, ...]:
    return GEOJSON_TYPES if file is RegistryFile.GRIDS else CSV_TYPES


def _issues(file: RegistryFile, issues: list[str]) -> JSONResponse:
    logger.info("registry API: %s refused, %d issues", file, len(issues))
    body = {"detail": f"{file.filename} was not imported; nothing changed", "issues": issues}
    return JSONResponse(body, status_code=422, headers=NO_STORE)


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"
