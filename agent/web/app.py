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
import logging
import re
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
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
from agent.web import views, wording
from agent.web.auth import LoginLimiter, PasswordCheck
from agent.web.guard import (
    SESSION_MAX_AGE_S,
    RequireLogin,
    SecurityHeaders,
    Sessions,
    call_id_of,
    csrf,
    csrf_ok,
    local_path,
    number,
    plain_error,
)
from agent.web.metrics import registry

HERE: Final = Path(__file__).parent
MAX_WON_EUR: Final = 10_000_000
MAX_PAGE: Final = 100_000
STORE_DAMAGED: Final = ("Le registre des appels est endommagé : le standard prend chaque appel en message vocal "
                        "(rien n'est perdu), mais plus rien ne s'affiche ici. Prévenez l'installateur : il doit "
                        "restaurer la dernière sauvegarde.")

log = logging.getLogger(__name__)


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
    secure_cookies: bool = False
    """Behind TLS: the session cookie is sent over HTTPS only, and HSTS is set."""
    calls_loop: asyncio.AbstractEventLoop | None = None
    """The calls' event loop, for /metrics (the dashboard runs on its own loop, in its own thread)."""
    health: Callable[[], list[str]] | None = None
    """What is wrong with the service now, in French (the banner on every page); the SMS failing are
    read from the store here."""


def create_app(settings: WebSettings, writer: Store | None = None) -> Starlette:
    """`writer`: the service's store, through which the follow-up of a lead is written (None: read-only)."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(ago=wording.ago, tel=wording.tel, sms=wording.sms, phone=wording.phone_display,
                                 outcome=wording.outcome, problem=wording.problem, plural=wording.plural,
                                 when=wording.when, titles=wording.TODO_TITLES, followups=FOLLOWUP_LABELS,
                                 mask=views.mask)
    limiter = LoginLimiter()
    checker = PasswordCheck(settings.password_hash)
    sessions = Sessions()
    metrics = registry(settings.store, writer, settings.calls_loop)

    def read(fn: Any) -> Any:
        try:
            conn = connect(settings.store, readonly=True)
            try:
                return fn(conn)
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            raise HTTPException(503, STORE_DAMAGED) from None

    def problems() -> list[str]:
        out = list(settings.health()) if settings.health is not None else []
        try:
            trouble = read(dashboard.sms_trouble)
        except HTTPException:
            return [*out, STORE_DAMAGED]
        if trouble is not None:
            out.append(f"{wording.plural(trouble.failing, 'SMS')} en échec depuis 24 h (dernière erreur : "
                       f"{trouble.last_error or 'inconnue'}) : les fiches n'arrivent plus sur votre téléphone, "
                       "regardez ici. Prévenez l'installateur.")
        return out

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        health = problems() if sessions.valid(request.session) else []
        return templates.TemplateResponse(request, name, {"csrf": csrf(request), "health": health, **context},
                                          status_code=status_code)

    async def login(request: Request) -> Response:
        client = request.client.host if request.client else "?"
        back = local_path(request.query_params.get("suite", ""))
        expired = "Votre session a expiré : la modification n'a pas été enregistrée. Reconnectez-vous, puis " \
                  "refaites-la." if request.query_params.get("expire") else None
        if request.method == "GET":
            return page(request, "login.html", error=None, notice=expired, back=back)
        if limiter.blocked(client):
            return page(request, "login.html", 429, error="Trop d'essais : réessayez dans une minute.", back=back)
        form = await request.form()
        if not csrf_ok(request, form):
            return PlainTextResponse("Formulaire expiré : rechargez la page.", status_code=403)
        back = local_path(str(form.get("suite", "")))
        ok = await checker.verify(str(form.get("password", "")))
        if ok is None:
            log.warning("dashboard: login refused from %s: too many at once", client)
            return page(request, "login.html", 503, error="Trop de connexions en même temps : réessayez dans "
                                                           "quelques secondes.", back=back)
        if not ok:
            limiter.failed(client)
            log.warning("dashboard: failed login from %s", client)  # (fail2ban: docs/SECURITY.md)
            return page(request, "login.html", 401, error="Mot de passe incorrect.", back=back)
        request.session.clear()
        request.session["user"] = "artisan"
        request.session["sid"] = sessions.open()
        request.session["csrf"] = secrets.token_urlsafe(24)
        return RedirectResponse(back or "/", status_code=303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        if csrf_ok(request, form):
            sessions.close(request.session)  # a copy of the cookie no longer works either
            request.session.clear()
        return RedirectResponse("/connexion", status_code=303)

    async def home(request: Request) -> Response:
        fig = read(lambda c: views.figures(c, settings.basket_eur, settings.conversion))
        items = read(lambda c: dashboard.todo(c, views.TZ))
        peak = max([n for _d, n in fig.per_day] + [1])
        return page(request, "home.html", fig=fig, items=items, peak=peak, hour_peak=max([*fig.per_hour, 1]),
                    today=datetime.now(views.TZ).date().isoformat())

    async def calls(request: Request) -> Response:
        q = request.query_params
        page_no = number(q.get("page", "1") or "1", 1, MAX_PAGE)
        day = q.get("jour", "")
        if day and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            raise HTTPException(400, "Jour invalide : une date comme 2026-12-06.")
        try:
            rows, total = read(lambda c: views.calls_page(
                c, page=page_no, urgency=q.get("urgence", ""), action=q.get("action", ""), text=q.get("q", "")[:200],
                day=day))
        except ValueError:
            raise HTTPException(400, "Jour invalide : une date comme 2026-12-06.") from None
        return page(request, "calls.html", rows=rows, total=total, q=q, page_no=page_no,
                    pages=max(1, -(-total // views.PAGE_SIZE)))

    async def call(request: Request) -> Response:
        call_id = call_id_of(request)
        detail = read(lambda c: call_detail(c, call_id))
        if detail is None:
            return PlainTextResponse("Appel introuvable.", status_code=404)
        started = detail["call"]["started_at"]
        when = datetime.fromisoformat(started).astimezone(views.TZ).strftime("%d/%m/%Y %H:%M") if started else ""
        return page(request, "call.html", d=detail, card=read(lambda c: dashboard.lead_card(c, call_id)), when=when,
                    timeline=_timeline(detail["trace"]), urgency=views.URGENCY_LABELS)

    async def recording(request: Request) -> Response:
        call_id = call_id_of(request)
        detail = read(lambda c: call_detail(c, call_id))
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
        return page(request, "leads.html", cards=cards, wanted=wanted, urgency=views.URGENCY_LABELS)

    async def followup(request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request, form):
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
        call_id = call_id_of(request)
        writer.submit(lambda c: dashboard.set_followup(c, call_id, status, amount)).result()
        return RedirectResponse(local_path(str(form.get("suite", ""))) or "/demandes", status_code=303)

    async def leads_csv(request: Request) -> Response:
        body = read(lambda c: views.leads_csv(views.leads_rows(c), wording.phone_display))
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="demandes.csv"'})

    async def live(request: Request) -> Response:
        return page(request, "live.html")

    async def live_feed(request: Request) -> Response:
        async def events() -> AsyncIterator[str]:
            while not await request.is_disconnected():
                rows = read(views.calls_in_progress)
                yield f"data: {json.dumps(rows, ensure_ascii=False)}\n\n"
                await asyncio.sleep(1.0)
        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def setup(request: Request, note: str | None = None) -> Response:
        return page(request, "setup.html", setup=settings.setup, note=note, sms_route=settings.sms_route,
                    calendar=settings.check_calendar is not None)

    async def setup_test(request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request, form):
            return PlainTextResponse("Formulaire expiré : rechargez la page.", status_code=403)
        what = str(form.get("test", ""))
        if what == "sms":
            if writer is None or settings.sms_route == "none" or not settings.artisan_to:
                return await setup(request, "Aucune route SMS ou aucun numéro d'artisan configuré.")
            key = f"test:{int(time.time())}"
            writer.submit(lambda c: enqueue(c, key=key, call_id=None, kind="test", route=settings.sms_route,
                                            recipient=str(settings.artisan_to),
                                            body="Standardiste : message de test, la route fonctionne.")).result()
            return await setup(request, f"Message de test mis en file ({key}) : voir son état dans /metrics ou ici "
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
        Middleware(SecurityHeaders, hsts=settings.secure_cookies),
        Middleware(SessionMiddleware, secret_key=settings.secret, session_cookie="standardiste",
                   max_age=SESSION_MAX_AGE_S, same_site="strict", https_only=settings.secure_cookies),
        Middleware(RequireLogin, sessions=sessions)], exception_handlers={HTTPException: plain_error})


def _timeline(trace: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The call's marks as positions on a bar (percent of the call), for the latency trace."""
    if not trace:
        return []
    end = max(float(m["ms"]) for m in trace) or 1.0
    return [{"event": m["event"], "ms": m["ms"], "left": round(100 * float(m["ms"]) / end, 1)} for m in trace]
