"""Signing in and out, and the checks every console route makes: a live session, the CSRF
token on every form post (403 without), and the role (viewers cannot act: 403).

The session cookie is HttpOnly, SameSite=Strict, scoped to the console, and Secure when the
public URL is https; it holds a random secret whose hash names a server-side session.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from jinja2 import Environment
from sqlalchemy.engine import Engine

from cloud.console.render import page
from cloud.console.sessions import Session, csrf_matches, end_session, find_session, start_session
from cloud.console.throttle import SignInThrottle
from cloud.console.users import authenticate, has_users
from cloud.web.forms import read_form

SESSION_COOKIE = "ga_session"
LOGIN_COOKIE = "ga_login"  # the sign-in form's CSRF token, before there is a session


class Gate:
    """The console's door: who is signed in, and may they do this."""

    def __init__(
        self,
        db: Engine,
        *,
        prefix: str,
        origin: str,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.prefix = prefix
        self.origin = origin
        self.secure = origin.startswith("https://")
        self.ttl_s = ttl_s
        self.clock = clock
        self.throttle = SignInThrottle(clock)

    async def session(self, request: Request) -> Session | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        return await asyncio.to_thread(find_session, self.db, token, self.clock())

    async def viewer(self, request: Request) -> Session:
        """The session, or a redirect to the sign-in page (401 for scripts)."""
        session = await self.session(request)
        if session is not None:
            return session
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            target = f"{self.prefix}/login?next={quote(request.url.path, safe='/')}"
            raise HTTPException(303, "sign in first", headers={"Location": target})
        raise HTTPException(401, "sign in first")

    async def actor(self, request: Request, allowed: set[str]) -> tuple[Session, dict[str, str]]:
        """A form post by someone who may act: (session, the form). 403 without the session's
        CSRF token, from another origin, or for a viewer."""
        session = await self.viewer(request)
        form = await read_form(request, allowed | {"csrf"})
        self.check_origin(request)
        if not csrf_matches(session.csrf, form.get("csrf")):
            raise HTTPException(403, "missing or wrong CSRF token")
        if not session.staff.role.can_act:
            raise HTTPException(403, "viewers cannot act on alarms")
        return session, form

    def check_origin(self, request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin != self.origin:
            raise HTTPException(403, "a form from another site")

    def set_cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=self.prefix,
            httponly=True,
            samesite="strict",
            secure=self.secure,
        )


def safe_next(prefix: str, target: str | None) -> str:
    """Only a path of the console itself (no open redirect)."""
    if target and target.startswith(prefix + "/") and "//" not in target and "\\" not in target:
        return target
    return prefix + "/"


def router(gate: Gate, env: Environment) -> APIRouter:
    """``/login`` (form and post) and ``/logout`` under the gate's prefix."""
    api = APIRouter()
    prefix = gate.prefix

    @api.get(prefix + "/login", include_in_schema=False)
    async def login_form(request: Request, next: str | None = None) -> Response:
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
        first = not await asyncio.to_thread(has_users, gate.db)
        response = page(
            env,
            request,
            "login.html",
            csrf=token,
            next=safe_next(prefix, next),
            prefix=prefix,
            no_accounts=first,
        )
        gate.set_cookie(response, LOGIN_COOKIE, token, 3600)
        return response

    @api.post(prefix + "/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await read_form(request, {"csrf", "username", "password", "next"})
        gate.check_origin(request)
        if not csrf_matches(request.cookies.get(LOGIN_COOKIE) or "\0", form.get("csrf")):
            raise HTTPException(403, "missing or wrong CSRF token")
        name = form.get("username", "").strip().lower()
        address = request.client.host if request.client else "-"
        if gate.throttle.blocked(name, address):
            raise HTTPException(429, "too many failed sign-ins: wait a few minutes")
        staff = await asyncio.to_thread(authenticate, gate.db, name, form.get("password", ""))
        if staff is None:
            gate.throttle.failed(name, address)
        else:
            gate.throttle.succeeded(name)
        target = safe_next(prefix, form.get("next"))
        if staff is None:
            return page(
                env,
                request,
                "login.html",
                401,
                csrf=form["csrf"],
                next=target,
                failed=True,
                prefix=prefix,
            )
        token, _ = await asyncio.to_thread(start_session, gate.db, staff, gate.clock(), gate.ttl_s)
        response = RedirectResponse(target, status_code=303)
        gate.set_cookie(response, SESSION_COOKIE, token, int(gate.ttl_s))
        response.delete_cookie(LOGIN_COOKIE, path=prefix)
        return response

    _logout_route(api, gate)
    return api


def _logout_route(api: APIRouter, gate: Gate) -> None:
    prefix = gate.prefix

    @api.post(prefix + "/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        session = await gate.viewer(request)
        form = await read_form(request, {"csrf"})
        if not csrf_matches(session.csrf, form.get("csrf")):
            raise HTTPException(403, "missing or wrong CSRF token")
        await asyncio.to_thread(end_session, gate.db, request.cookies[SESSION_COOKIE])
        response = RedirectResponse(prefix + "/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=prefix)
        return response
