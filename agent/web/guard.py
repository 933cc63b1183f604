"""The dashboard's guards: who may see a page (a session opened by a login, not closed by a logout),
the security headers of every answer, CSRF tokens, and parameters checked before use (a bad one is a
400 in French, never a traceback)."""

from __future__ import annotations

import re
import secrets
import time
from collections import OrderedDict
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

SESSION_MAX_AGE_S: Final = 12 * 3600
LOOPBACK: Final = ("127.0.0.1", "::1")
MAX_SESSIONS: Final = 64


class RequireLogin:
    """Every path but the login page and the static files needs a session; /metrics also answers loopback."""

    def __init__(self, app: Any, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in ("/connexion",) or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        logged_in = self.sessions.valid(scope.get("session", {}))
        local = scope["path"] == "/metrics" and request.client is not None and request.client.host in LOOPBACK
        if logged_in or local:
            await self.app(scope, receive, send)
            return
        # Back where they were after logging in; a change sent with an expired session is refused
        # and said so (the login page asks to make it again), never silently dropped.
        if request.method == "GET":
            target = scope["path"] + (f"?{request.url.query}" if request.url.query else "")
            response: Response = RedirectResponse(f"/connexion?{urlencode({'suite': target})}", status_code=303)
        else:
            back = local_path(urlsplit(request.headers.get("referer", "")).path) or "/"
            response = RedirectResponse(f"/connexion?{urlencode({'suite': back, 'expire': '1'})}", status_code=303)
        if scope["path"] == "/metrics" or scope["path"].endswith(".csv"):
            response = PlainTextResponse("Connexion requise.", status_code=401)
        await response(scope, receive, send)


class Sessions:
    """The sessions opened by a login and not closed by a logout (at most MAX_SESSIONS, the oldest
    forgotten first): a copied cookie stops working at logout; a restart (a new password needs one)
    closes every session."""

    def __init__(self) -> None:
        self._open: OrderedDict[str, float] = OrderedDict()

    def open(self) -> str:
        sid = secrets.token_urlsafe(18)
        self._open[sid] = time.time() + SESSION_MAX_AGE_S
        while len(self._open) > MAX_SESSIONS:
            self._open.popitem(last=False)
        return sid

    def valid(self, session: Any) -> bool:
        sid = session.get("sid") if session else None
        return bool(session and session.get("user")) and isinstance(sid, str) and \
            self._open.get(sid, 0.0) > time.time()

    def close(self, session: Any) -> None:
        self._open.pop(str(session.get("sid")), None)


class SecurityHeaders:
    """Headers on every answer: no framing, no type sniffing, scripts and styles from the dashboard
    only, no caching of pages with personal data, no referrer sent elsewhere (HSTS behind TLS)."""

    CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                  "media-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")

    def __init__(self, app: Any, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = self.CSP
                headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                if not static:
                    headers["Cache-Control"] = "no-store"
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, with_headers)


async def plain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return PlainTextResponse(exc.detail, status_code=exc.status_code)


def number(text: str, lo: int, hi: int) -> int:
    """A whole number from a query parameter, or 400 (never a traceback)."""
    if not re.fullmatch(r"\d{1,9}", text.strip()) or not lo <= int(text) <= hi:
        raise HTTPException(400, f"Paramètre invalide : un nombre de {lo} à {hi}.")
    return int(text)


def call_id_of(request: Request) -> int:
    call_id = int(request.path_params["call_id"])
    if not 0 < call_id < 2**62:
        raise HTTPException(404, "Appel introuvable.")
    return call_id


def local_path(path: str) -> str:
    """`path` if it is a page of this dashboard (never another site: "//x", "http://x"), else ""."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path or path.startswith("/connexion"):
        return ""
    return path


def csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return str(token)


def csrf_ok(request: Request, form: Any) -> bool:
    sent = str(form.get("csrf", ""))
    return bool(sent) and secrets.compare_digest(sent, str(request.session.get("csrf", "")))
