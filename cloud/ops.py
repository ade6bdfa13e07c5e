"""The worker's operations endpoints: /healthz, /readyz and /metrics, and its HTTP servers.

``/healthz`` answers while the process and its event loop run (a liveness check);
``/readyz`` answers 200 only while every part does its job, else 503 with each part's
reason; the same facts are Prometheus gauges (``gridalarm_ready{part}``). Readiness is
computed in a thread of its own with a deadline: a check stuck on a locked database is
itself an answer (not ready), and never takes a thread the pipeline needs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cloud.health import Health
from cloud.metrics import Metrics

READY_DEADLINE_S = 2.0


class Server:
    """uvicorn on a socket bound before anything else started."""

    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        self._sock = sock
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        )

    async def serve(self) -> None:
        await self._server.serve(sockets=[self._sock])
        if not self._server.should_exit:  # a server that ends unasked must not end silently
            raise RuntimeError(f"HTTP server on {self._sock.getsockname()} stopped by itself")

    def stop(self) -> None:
        self._server.should_exit = True


def serve_readiness(app: FastAPI, health: Health) -> None:
    """Add /readyz to *app* (the web app has its own /healthz)."""
    checker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="readyz")

    async def readyz() -> JSONResponse:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(READY_DEADLINE_S):
                ok, parts = await loop.run_in_executor(checker, health.ready)
        except TimeoutError:  # a probe hangs (a database that does not answer): say what is known
            ok, parts = health.ready(probes=False)
            ok, parts = False, {**parts, "probes": f"no answer in {READY_DEADLINE_S} s"}
        return JSONResponse(
            {"ready": ok, "parts": parts}, status_code=200 if ok else 503,
            headers={"Cache-Control": "no-store"},
        )  # fmt: skip

    app.add_api_route("/readyz", readyz, methods=["GET"], include_in_schema=False)


def ops_app(metrics: Metrics, health: Health) -> FastAPI:
    """/metrics for Prometheus, /healthz and /readyz for systemd and load balancers."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    async def prometheus() -> Response:
        body = await asyncio.to_thread(generate_latest, metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_api_route("/metrics", prometheus, methods=["GET"], include_in_schema=False)
    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    serve_readiness(app, health)
    return app
