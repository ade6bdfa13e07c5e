"""Leaflet, its marker clusters and plotly.js, served from their Python packages (nothing
from a CDN, nothing copied into this repository), and the console's own script and style."""

from __future__ import annotations

import asyncio
import gzip
import importlib.resources
import importlib.util
from pathlib import Path

import xstatic.pkg.leaflet_markercluster as markercluster
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from xstatic.pkg import leaflet

from cloud.console.compression import compressed

OWN = Path(str(importlib.resources.files("cloud.console") / "static"))
_PLOTLY = importlib.util.find_spec("plotly")  # located, not imported: only its file is needed
PLOTLY_DIR = Path(next(iter(_PLOTLY.submodule_search_locations or []))) if _PLOTLY else Path("-")
FILES: dict[str, Path] = {
    "leaflet.js": Path(leaflet.BASE_DIR) / "leaflet.js",
    "leaflet.css": Path(leaflet.BASE_DIR) / "leaflet.css",
    "markercluster.js": Path(markercluster.BASE_DIR) / "leaflet.markercluster.js",
    "MarkerCluster.css": Path(markercluster.BASE_DIR) / "MarkerCluster.css",
    "MarkerCluster.Default.css": Path(markercluster.BASE_DIR) / "MarkerCluster.Default.css",
    "plotly.min.js": PLOTLY_DIR / "package_data" / "plotly.min.js",
    "console.js": OWN / "console.js",
    "map.js": OWN / "map.js",
    "console.css": OWN / "console.css",
}
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def missing() -> list[str]:
    """Asset files that are not installed (a start-up check)."""
    return [f"{name}: {path}" for name, path in FILES.items() if not path.is_file()]


def router(prefix: str) -> APIRouter:
    """``{prefix}/assets/{name}``: the files above, cached for an hour."""
    api = APIRouter()
    cache: dict[str, tuple[bytes, bytes]] = {}  # name -> (as is, gzip-compressed)

    @api.get(prefix + "/assets/{name}", include_in_schema=False)
    async def asset(request: Request, name: str) -> Response:
        path = FILES.get(name)
        if path is None:
            raise HTTPException(404, "no such asset")
        if name not in cache:
            body = await asyncio.to_thread(path.read_bytes)
            cache[name] = (body, await asyncio.to_thread(gzip.compress, body, 9))
        body, packed = cache[name]
        headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return compressed(request, body, TYPES[path.suffix], headers, packed)

    return api
