"""The console as an ASGI application (Starlette): the routes, the guard every request passes,
the login, and the monitor's `/healthz`, `/livez` and `/metrics` (no login, as on the
monitor's own port).

The guard denies by default: every path but the login, the health pages and the static
files needs a session (a page redirects to the login, anything else answers 401), and every
POST handler reads its form through `checked_form`, which answers 403 without the session's
CSRF token. Responses carry a strict Content-Security-Policy (scripts from this server
only: an injected `<script>` would not run even if escaping failed) and `Server-Timing`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.clock import Clock
from bot.config.settings import Settings
from bot.console.access import Access
from bot.console.actions import Publish
from bot.console.dashboard import ChartCache
from bot.console.render import console_of, page
from bot.console.sessions import COOKIE, LOGIN_COOKIE, LoginLimiter, Sessions, token_matches
from bot.console.sops import SopSource
from bot.console.uploads import Uploads
from bot.runtime import BotContext
from bot.signals.engine import SignalEngine
from bot.signals.tier_policy import TierPolicy
from bot.store import Database

STATIC = Path(__file__).parent / "static"
PUBLIC = frozenset({"/login", "/healthz", "/livez", "/metrics", "/favicon.ico"})  # exact paths
PUBLIC_PREFIX = "/static/"
SMALL_FORM = {"max_files": 0, "max_fields": 20, "max_part_size": 16 * 1024}  # every form but an upload
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass
class Console:
    """Everything the pages read and change."""

    settings: Settings
    database: Database
    clock: Clock
    access: Access
    sessions: Sessions
    context: BotContext  # for /healthz and /metrics (no accounts when run alone)
    sops: SopSource
    charts: ChartCache
    uploads: Uploads
    engine: Callable[[], SignalEngine]  # the daemon's own, or one made when first needed
    publish: Publish | None  # the daemon's reaction lanes; None: events relayed by the daemon
    started: Callable[[], bool]
    in_daemon: bool
    token_path: Path | None = None  # where a generated token was written
    limiter: LoginLimiter | None = None
    # one recipient count (the calendar's) at a time: the daemon's own work shares the threads
    counting: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))

    def __post_init__(self) -> None:
        self.limiter = self.limiter or LoginLimiter()
        self.policy = TierPolicy.from_settings(self.settings.tiers)


def build_app(console: Console) -> Starlette:
    from bot.console import pages, posts

    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/livez", livez, methods=["GET", "HEAD"]),
        Route("/metrics", prometheus, methods=["GET", "HEAD"]),
        Route("/", pages.dashboard, methods=["GET"]),
        Route("/dashboard/charts", pages.dashboard_charts, methods=["GET"]),
        Route("/contacts", pages.contacts, methods=["GET"]),
        Route("/contacts/{contact_id:int}", pages.contact, methods=["GET"]),
        Route("/contacts/{contact_id:int}/opt-out", posts.opt_out, methods=["POST"]),
        Route("/contacts/{contact_id:int}/opt-in", posts.opt_in, methods=["POST"]),
        Route("/accounts/{account_id}/pause", posts.pause, methods=["POST"]),
        Route("/accounts/{account_id}/resume", posts.resume, methods=["POST"]),
        Route("/sops", pages.sops, methods=["GET"]),
        Route("/sops/calendar", pages.calendar, methods=["GET"]),
        Route("/sops/check", pages.check, methods=["GET"]),
        Route("/sops/{sop_id}/preview", pages.preview, methods=["GET"]),
        Route("/sops/{sop_id}/resume", posts.resume_sop, methods=["POST"]),
        Route("/outbox", pages.outbox, methods=["GET"]),
        Route("/outbox/{row_id:int}", pages.outbox_row, methods=["GET"]),
        Route("/import", pages.upload_form, methods=["GET"]),
        Route("/import", posts.upload, methods=["POST"]),
        Route("/import/{upload_id}", posts.import_upload, methods=["POST"]),
        Route("/favicon.ico", favicon, methods=["GET", "HEAD"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _error_page})
    app.state.console = console
    return Guard(app)  # type: ignore[return-value]


# -- the guard -------------------------------------------------------------------------------


class Guard:
    """Session check, security headers and Server-Timing for every HTTP request."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    @property
    def state(self) -> Any:
        return self.app.state

    @property
    def routes(self) -> Any:
        return self.app.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        console: Console = self.app.state.console
        path: str = scope["path"]
        if path not in PUBLIC and not path.startswith(PUBLIC_PREFIX):
            request = Request(scope)
            session = console.sessions.read(request.cookies.get(COOKIE), console.clock.now())
            if session is None:
                await _refuse(request, began)(scope, receive, _headers(send, began))
                return
            scope.setdefault("state", {})["session"] = session
        await self.app(scope, receive, _headers(send, began))


def _refuse(request: Request, began: float) -> ASGIApp:
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        expired = COOKIE in request.cookies
        return RedirectResponse(
            f"/login?next={quote(target, safe='')}" + ("&expired=1" if expired else ""), status_code=303
        )
    return PlainTextResponse("login required", status_code=401)


def _headers(send: Send, began: float) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            headers.setdefault("Content-Security-Policy", CSP)
            headers.setdefault("X-Content-Type-Options", "nosniff")
            headers.setdefault("X-Frame-Options", "DENY")
            headers.setdefault("Referrer-Policy", "same-origin")
            headers.setdefault("Cache-Control", "no-store")
            headers["Server-Timing"] = f"app;dur={(time.perf_counter() - began) * 1000:.1f}"
        await send(message)

    return sending


async def checked_form(request: Request, **limits: Any) -> FormData:
    """The POSTed form, only with the session's CSRF token (403 otherwise) and from a page of
    this console (an Origin header naming another site is refused too)."""
    session = getattr(request.state, "session", None)
    origin = request.headers.get("origin")
    if origin is not None and origin != "null" and origin.split("://", 1)[-1] != request.headers.get("host"):
        raise HTTPException(403, "cross-site request")
    form = await request.form(**(limits or SMALL_FORM))
    given = form.get("csrf")
    if (
        session is None
        or not isinstance(given, str)
        or not console_of(request).sessions.csrf_ok(session, given)
    ):
        await form.close()
        raise HTTPException(403, "missing or wrong CSRF token")
    return form


async def _error_page(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    key = {403: "forbidden", 404: "not_found"}.get(error.status_code, "error")
    if getattr(request.state, "session", None) is None and error.status_code != 404:
        return PlainTextResponse(str(error.detail), status_code=error.status_code)
    return page(request, "error.html.j2", status=error.status_code, message_key=key, detail=error.detail)


# -- login -----------------------------------------------------------------------------------


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _next(value: str | None) -> str:
    """Only a path of this console (never `//elsewhere` or `https://…`)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")) and "\n" not in value:
        return value
    return "/"


def _secure(request: Request) -> bool:
    """Whether the browser came over HTTPS: directly, or through a TLS proxy on this host."""
    if request.url.scheme == "https":
        return True
    local = request.client is not None and request.client.host in ("127.0.0.1", "::1")
    return local and request.headers.get("x-forwarded-proto", "").lower() == "https"


async def login_page(request: Request) -> Response:
    console = console_of(request)
    if console.sessions.read(request.cookies.get(COOKIE), console.clock.now()) is not None:
        return RedirectResponse(_next(request.query_params.get("next")), status_code=303)
    return _login_form(request, status=200, error=None)


def _login_form(request: Request, *, status: int, error: str | None, wait: int = 0) -> Response:
    import secrets

    console = console_of(request)
    nonce = secrets.token_urlsafe(16)
    shown = None
    if console.token_path is not None:
        try:
            shown = str(console.token_path.relative_to(console.settings.base_dir))
        except ValueError:
            shown = str(console.token_path)
    response = page(
        request,
        "login.html.j2",
        status=status,
        nonce=nonce,
        next=_next(request.query_params.get("next")),
        error=error,
        wait=wait,
        expired=request.query_params.get("expired") == "1",
        token_env=console.access.token_env,
        token_file=shown,
    )
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


async def login(request: Request) -> Response:
    console = console_of(request)
    assert console.limiter is not None
    form = await request.form(max_files=0, max_fields=5, max_part_size=4096)
    nonce, token = form.get("nonce"), form.get("token")
    if not (isinstance(nonce, str) and nonce and nonce == request.cookies.get(LOGIN_COOKIE)):
        raise HTTPException(403, "the login form expired; reload it")
    now = console.clock.now()
    client = _client(request)
    wait = console.limiter.wait(client, now)
    if wait:
        response = _login_form(request, status=429, error="login.wait", wait=wait)
        response.headers["Retry-After"] = str(wait)
        return response
    if not isinstance(token, str) or not token_matches(token.strip(), console.access.token):
        console.limiter.failed(client, now)
        return _login_form(request, status=401, error="login.wrong")
    console.limiter.succeeded(client)
    _, cookie = console.sessions.issue(now)
    target = form.get("next")
    response = RedirectResponse(_next(target if isinstance(target, str) else None), status_code=303)
    response.set_cookie(
        COOKIE, cookie, max_age=int(console.sessions.lifetime.total_seconds()), httponly=True,
        samesite="lax", secure=_secure(request),
    )  # fmt: skip
    response.delete_cookie(LOGIN_COOKIE)
    return response


async def logout(request: Request) -> Response:
    await checked_form(request)
    console = console_of(request)
    console.sessions.end(request.state.session, console.clock.now())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


# -- health and metrics (no login: what the monitor's port serves) -------------------------------


async def healthz(request: Request) -> Response:
    from bot.monitor.health import health

    console = console_of(request)
    seen = health(console.context, console.started(), console.clock.now())
    return _json(200 if seen.ready else 503, seen.body())


async def favicon(request: Request) -> Response:
    return RedirectResponse("/static/favicon.svg", status_code=301)


async def livez(request: Request) -> Response:
    return _json(200, {"live": True})


async def prometheus(request: Request) -> Response:
    from bot.monitor import metrics

    console = console_of(request)
    body = await asyncio.to_thread(metrics.exposition, console.context)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


def _json(status: int, body: object) -> Response:
    import json

    return Response(
        json.dumps(body, ensure_ascii=False), status_code=status, media_type="application/json; charset=utf-8"
    )
