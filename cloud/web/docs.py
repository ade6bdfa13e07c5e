"""The API's own documentation, served offline: ``/openapi.json`` and Swagger UI at ``/docs``.

Swagger UI's script and style come from the ``swagger-ui-bundle-v2`` package, served from
this app (a control room's network may not reach a CDN, and the page must not depend on one);
its validator badge, which would call out to swagger.io, is off.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"


def add_docs(app: FastAPI) -> None:
    """Mount Swagger UI's files and the ``/docs`` page over the app's ``/openapi.json``."""
    app.mount(ASSETS, StaticFiles(directory=Path(str(swagger_ui_path))), name="docs_assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        # relative URLs: the page works under a path prefix too
        return get_swagger_ui_html(
            openapi_url="openapi.json",
            title=f"{app.title} API",
            swagger_js_url="docs/assets/swagger-ui-bundle.js",
            swagger_css_url="docs/assets/swagger-ui.css",
            swagger_favicon_url="docs/assets/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
