"""The web app: the worker's page (a PWA), Twilio's SMS webhook, the registry API, the fire
brigades' API and its admin routes, health; ``/openapi.json`` and ``/docs`` describe them.

The cloud worker owns the desk and its resources; this factory only builds routes.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import SecretStr

from cloud.brigade import admin_api as brigade_admin
from cloud.brigade import api as brigade_api
from cloud.brigade.portal import BrigadePortal
from cloud.notify import LinkSigner
from cloud.web import hazard, pwa, registry_api, sms
from cloud.web import page as worker_page
from cloud.web.docs import add_docs
from cloud.web.photos import PhotoStore
from cloud.web.protocols import RegistryDesk, ReportDesk, WorkerDesk
from cloud.web.render import environment
from cloud.web.render import page as render_page
from cloud.web.settings import WebSettings


def create_app(
    desk: WorkerDesk,
    signer: LinkSigner,
    *,
    twilio_auth_token: str | None = None,
    public_base_url: str,
    clock: Callable[[], float],
    settings: WebSettings | None = None,
    photo_dir: Path | None = None,
    brigades: BrigadePortal | None = None,
) -> FastAPI:
    """Routes over *desk*. *public_base_url* is what Twilio and the links use (e.g.
    ``https://alarm.example.cn``); *clock* gives epoch seconds (token expiry, positions).

    *settings* turn on the registry API (admin token) and the page's push button (VAPID
    public key), both needing a *desk* that is also a ``RegistryDesk``, and Twilio's SMS
    webhook (its auth token, or *twilio_auth_token*): without a token there is no webhook
    (404); an empty one is refused (ValueError), as it would verify forged requests.

    With *photo_dir* and a desk that is also a ``ReportDesk``, workers report hazards from
    the page (``/m/{token}/report``), their photos kept there.

    *brigades* turns on the brigade API (``/api/brigade/v1``) and, with the admin token, the
    brigade admin routes (``/api/admin/brigades``)."""
    parts = urlsplit(public_base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"public_base_url {public_base_url!r} is not an http(s) URL")
    settings = settings or WebSettings()
    stores = isinstance(desk, RegistryDesk)
    if settings.admin_token is not None and not stores:
        raise ValueError("an admin token is set but the desk has no registry (RegistryDesk)")
    env = environment()
    app = FastAPI(title="gridalarm", docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    add_docs(app)
    origin = f"{parts.scheme}://{parts.netloc}"
    push_key = settings.vapid_public_key if stores else None
    app.include_router(worker_page.router(desk, signer, env, clock, origin, push_key=push_key))
    app.include_router(
        pwa.router(desk, signer, env, clock, origin, push_services=settings.push_services)
    )
    if photo_dir is not None and isinstance(desk, ReportDesk):
        app.include_router(
            hazard.router(desk, signer, env, clock, origin, photos=PhotoStore(photo_dir))  # type: ignore[arg-type]
        )
    twilio_token = _twilio_token(twilio_auth_token, settings.twilio_auth_token)
    if twilio_token is not None:
        app.include_router(sms.router(desk, twilio_token, public_base_url))
    if settings.admin_token is not None and isinstance(desk, RegistryDesk):
        app.include_router(registry_api.router(desk, settings.admin_token))
    if brigades is not None:
        app.include_router(brigade_api.router(brigades))
        if settings.admin_token is not None:
            app.include_router(brigade_admin.router(brigades, settings.admin_token, clock))

    @app.exception_handler(worker_page.Refused)
    async def refused(_request: Request, exc: worker_page.Refused) -> HTMLResponse:
        heading, text = exc.zh if exc.locale == "zh-CN" else exc.en
        return render_page(
            env, "refused.html", exc.status, locale=exc.locale, code=exc.status,
            heading=heading, text=text,
        )  # fmt: skip

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _twilio_token(explicit: str | None, configured: SecretStr | None) -> str | None:
    """The one Twilio token of the app, or None (no webhook); ValueError for an empty one."""
    from_settings = configured.get_secret_value() if configured is not None else None
    if explicit is None:
        return from_settings
    if not explicit.strip():
        raise ValueError(
            "twilio_auth_token is empty: it would verify forged SMS replies; pass None "
            "(TWILIO_* unset) to turn the SMS webhook off"
        )
    if from_settings is not None and not hmac.compare_digest(explicit, from_settings):
        raise ValueError("two different Twilio auth tokens: twilio_auth_token and settings")
    return explicit
