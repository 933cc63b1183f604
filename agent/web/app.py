"""The artisan's dashboard (Starlette + Jinja2, served by uvicorn inside the service): French pages
that read the store, a login, and `/metrics`.

Security: it binds 127.0.0.1 unless the config opens it; every page needs a session (a signed,
HttpOnly, SameSite=Strict cookie) made by logging in with the password set at install; forms that
change something carry a CSRF token; failed logins are rate-limited per client; caller numbers are
masked everywhere but on the lead card. `/metrics` answers loopback clients without a session (the
local Prometheus), anyone else only with one.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from agent.store import dashboard
from agent.store.db import Store, connect
from agent.store.outbox import enqueue
from agent.store.queries import call_detail
from agent.store.schema import FOLLOWUP_LABELS, FollowUp
from agent.web import queries, wording
from agent.web.auth import LoginLimiter, verify_password
from agent.web.metrics import registry

HERE: Final = Path(__file__).parent
SESSION_MAX_AGE_S: Final = 12 * 3600
LOOPBACK: Final = ("127.0.0.1", "::1")
MAX_WON_EUR: Final = 10_000_000


@dataclass(frozen=True)
class WebSettings:
    store: Path
    password_hash: str
    secret: str
    basket_eur: int = 180
    conversion: float = 0.3
    messages_dir: Path | None = None
    """Where callers' voice messages are (a recording is served only from here)."""
    setup: tuple[tuple[str, str], ...] = ()
    """The Réglages page: (what, state) lines prepared by the service (dialplans, models, SMS, calendar)."""
    sms_route: str = "none"
    artisan_to: str | None = None
    """Where the Réglages page's test SMS goes (the default dialplan's artisan)."""
    check_calendar: Callable[[], Awaitable[str]] | None = None
    """Reads the calendar now; one French line saying what it found."""
    health: Callable[[], list[str]] | None = None
    """What is wrong with the service now, in French (the banner on every page); the SMS failing are
    read from the store here."""


def create_app(settings: WebSettings, writer: Store | None = None) -> Starlette:
    """`writer`: the service's store, through which the follow-up of a lead is written (None: read-only)."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(ago=wording.ago, tel=wording.tel, sms=wording.sms, phone=wording.phone_display,
                                 outcome=wording.outcome, problem=wording.problem, plural=wording.plural,
                                 when=wording.when, titles=wording.TODO_TITLES, followups=FOLLOWUP_LABELS,
                                 mask=queries.mask)
    limiter = LoginLimiter()
    metrics = registry(settings.store, writer)

    def read(fn: Any) -> Any:
        conn = connect(settings.store, readonly=True)
        try:
            return fn(conn)
        finally:
            conn.close()

    def problems() -> list[str]:
        out = list(settings.health()) if settings.health is not None else []
        trouble = read(dashboard.sms_trouble)
        if trouble is not None:
            out.append(f"{wording.plural(trouble.failing, 'SMS')} en échec depuis 24 h (dernière erreur : "
                       f"{trouble.last_error or 'inconnue'}) : les fiches n'arrivent plus sur votre téléphone, "
                       "regardez ici. Prévenez l'installateur.")
        return out

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        health = problems() if request.session.get("user") else []
        return templates.TemplateResponse(request, name, {"csrf": _csrf(request), "health": health, **context},
                                          status_code=status_code)

    async def login(request: Request) -> Response:
        client = request.client.host if request.client else "?"
        back = _local_path(request.query_params.get("suite", ""))
        expired = "Votre session a expiré : la modification n'a pas été enregistrée. Reconnectez-vous, puis " \
                  "refaites-la." if request.query_params.get("expire") else None
        if request.method == "GET":
            return page(request, "login.html", error=None, notice=expired, back=back)
        if limiter.blocked(client):
            return page(request, "login.html", 429, error="Trop d'essais : réessayez dans une minute.", back=back)
        form = await request.form()
        if not _csrf_ok(request, form):
            return PlainTextResponse("Formulaire expiré : rechargez la page.", status_code=403)
        back = _local_path(str(form.get("suite", "")))
        if not verify_password(str(form.get("password", "")), settings.password_hash):
            limiter.failed(client)
            return page(request, "login.html", 401, error="Mot de passe incorrect.", back=back)
        request.session.clear()
        request.session["user"] = "artisan"
        request.session["csrf"] = secrets.token_urlsafe(24)
        return RedirectResponse(back or "/", status_code=303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        if _csrf_ok(request, form):
            request.session.clear()
        return RedirectResponse("/connexion", status_code=303)

    async def home(request: Request) -> Response:
        fig = read(lambda c: queries.figures(c, settings.basket_eur, settings.conversion))
        items = read(lambda c: dashboard.todo(c, queries.TZ))
        peak = max([n for _d, n in fig.per_day] + [1])
        return page(request, "home.html", fig=fig, items=items, peak=peak, hour_peak=max([*fig.per_hour, 1]),
                    today=datetime.now(queries.TZ).date().isoformat())

    async def calls(request: Request) -> Response:
        q = request.query_params
        rows, total = read(lambda c: queries.calls_page(
            c, page=int(q.get("page", "1") or 1), urgency=q.get("urgence", ""), action=q.get("action", ""),
            text=q.get("q", ""), day=q.get("jour", "")))
        return page(request, "calls.html", rows=rows, total=total, q=q, page_no=int(q.get("page", "1") or 1),
                    pages=max(1, -(-total // queries.PAGE_SIZE)))

    async def call(request: Request) -> Response:
        call_id = int(request.path_params["call_id"])
        detail = read(lambda c: call_detail(c, call_id))
        if detail is None:
            return PlainTextResponse("Appel introuvable.", status_code=404)
        started = detail["call"]["started_at"]
        when = datetime.fromisoformat(started).astimezone(queries.TZ).strftime("%d/%m/%Y %H:%M") if started else ""
        return page(request, "call.html", d=detail, card=read(lambda c: dashboard.lead_card(c, call_id)), when=when,
                    timeline=_timeline(detail["trace"]), urgency=queries.URGENCY_LABELS)

    async def recording(request: Request) -> Response:
        detail = read(lambda c: call_detail(c, int(request.path_params["call_id"])))
        path = Path(detail["lead"]["recording"]) if detail and detail["lead"] and detail["lead"]["recording"] else None
        if path is None or settings.messages_dir is None or not path.resolve().is_relative_to(
                settings.messages_dir.resolve()) or not path.is_file():
            return PlainTextResponse("Pas d'enregistrement.", status_code=404)
        return FileResponse(path, media_type="audio/wav")

    async def leads(request: Request) -> Response:
        try:
            wanted = FollowUp(request.query_params["suivi"]) if request.query_params.get("suivi") else None
        except ValueError:
            wanted = None
        cards = read(lambda c: dashboard.leads(c, wanted))
        return page(request, "leads.html", cards=cards, wanted=wanted, urgency=queries.URGENCY_LABELS)

    async def followup(request: Request) -> Response:
        form = await request.form()
        if not _csrf_ok(request, form):
            return PlainTextResponse("Formulaire expiré : rechargez la page.", status_code=403)
        try:
            status = FollowUp(str(form.get("followup")))
        except ValueError:
            return PlainTextResponse("Statut inconnu.", status_code=400)
        amount_text = str(form.get("montant", "") or "").replace(" ", "").replace("€", "").replace(",", ".")
        try:
            amount = round(float(amount_text)) if amount_text else None
        except ValueError:
            return PlainTextResponse("Montant illisible : un nombre d'euros, par exemple 350.", status_code=400)
        if amount is not None and not 0 <= amount <= MAX_WON_EUR:
            return PlainTextResponse(f"Montant hors limites (0 à {MAX_WON_EUR} €).", status_code=400)
        if writer is None:
            return PlainTextResponse("Lecture seule.", status_code=503)
        call_id = int(request.path_params["call_id"])
        writer.submit(lambda c: dashboard.set_followup(c, call_id, status, amount)).result()
        return RedirectResponse(_local_path(str(form.get("suite", ""))) or "/demandes", status_code=303)

    async def leads_csv(request: Request) -> Response:
        body = read(lambda c: queries.leads_csv(queries.leads_rows(c), wording.phone_display))
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="demandes.csv"'})

    async def live(request: Request) -> Response:
        return page(request, "live.html")

    async def live_feed(request: Request) -> Response:
        async def events() -> AsyncIterator[str]:
            while not await request.is_disconnected():
                rows = read(queries.calls_in_progress)
                yield f"data: {json.dumps(rows, ensure_ascii=False)}\n\n"
                await asyncio.sleep(1.0)
        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def setup(request: Request, note: str | None = None) -> Response:
        return page(request, "setup.html", setup=settings.setup, note=note, sms_route=settings.sms_route,
                    calendar=settings.check_calendar is not None)

    async def setup_test(request: Request) -> Response:
        form = await request.form()
        if not _csrf_ok(request, form):
            return PlainTextResponse("Formulaire expiré : rechargez la page.", status_code=403)
        what = str(form.get("test", ""))
        if what == "sms":
            if writer is None or settings.sms_route == "none" or not settings.artisan_to:
                return await setup(request, "Aucune route SMS ou aucun numéro d'artisan configuré.")
            key = f"test:{int(time.time())}"
            writer.submit(lambda c: enqueue(c, key=key, call_id=None, kind="test", route=settings.sms_route,
                                            recipient=str(settings.artisan_to),
                                            body="Standardiste : SMS de test, la route fonctionne.")).result()
            return await setup(request, f"SMS de test mis en file ({key}) : voir son état dans /metrics ou ici "
                                        "dans une minute.")
        if what == "calendar" and settings.check_calendar is not None:
            return await setup(request, await settings.check_calendar())
        return await setup(request, "Test inconnu.")

    async def metrics_page(request: Request) -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/connexion", login, methods=["GET", "POST"]), Route("/deconnexion", logout, methods=["POST"]),
        Route("/", home), Route("/appels", calls), Route("/appels/{call_id:int}", call),
        Route("/appels/{call_id:int}/enregistrement", recording), Route("/demandes", leads),
        Route("/demandes/{call_id:int}/suivi", followup, methods=["POST"]), Route("/demandes.csv", leads_csv),
        Route("/direct", live), Route("/direct/flux", live_feed), Route("/reglages", setup),
        Route("/reglages/test", setup_test, methods=["POST"]), Route("/metrics", metrics_page),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    # The session middleware first (outermost), so that the login check sees the session.
    return Starlette(routes=routes, middleware=[
        Middleware(SessionMiddleware, secret_key=settings.secret, session_cookie="standardiste",
                   max_age=SESSION_MAX_AGE_S, same_site="strict", https_only=False),
        Middleware(_RequireLogin)])


class _RequireLogin:
    """Every path but the login page and the static files needs a session; /metrics also answers loopback."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in ("/connexion",) or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        logged_in = bool(scope.get("session", {}).get("user"))
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
            back = _local_path(urlsplit(request.headers.get("referer", "")).path) or "/"
            response = RedirectResponse(f"/connexion?{urlencode({'suite': back, 'expire': '1'})}", status_code=303)
        if scope["path"] == "/metrics" or scope["path"].endswith(".csv"):
            response = PlainTextResponse("Connexion requise.", status_code=401)
        await response(scope, receive, send)


def _local_path(path: str) -> str:
    """`path` if it is a page of this dashboard (never another site: "//x", "http://x"), else ""."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path or path.startswith("/connexion"):
        return ""
    return path


def _csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return str(token)


def _csrf_ok(request: Request, form: Any) -> bool:
    sent = str(form.get("csrf", ""))
    return bool(sent) and secrets.compare_digest(sent, str(request.session.get("csrf", "")))


def _timeline(trace: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The call's marks as positions on a bar (percent of the call), for the latency trace."""
    if not trace:
        return []
    end = max(float(m["ms"]) for m in trace) or 1.0
    return [{"event": m["event"], "ms": m["ms"], "left": round(100 * float(m["ms"]) / end, 1)} for m in trace]
