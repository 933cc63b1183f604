"""Assembly: the service config in, a running receptionist out.

Engines (the French models if installed, else message mode), the phrase book rendered for every
dialplan, the store with its retention, the ARI controller with the session factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from agent.actions.agenda import Calendars
from agent.actions.calendar import CalDavCalendar, CalendarRoute
from agent.actions.delivery import Outbox, Sender
from agent.actions.routes import NO_ROUTE, REGISTRY, Route
from agent.asr.base import Transcriber
from agent.audio.turn_model import MODEL_DIR as TURN_MODEL_DIR
from agent.audio.turn_model import TurnDecider, load_turn_model
from agent.audio.vad import VadEngine
from agent.background import Background
from agent.config import Config, default_max_calls
from agent.dialogue import phrases
from agent.dialogue.dialplan import Dialplan
from agent.dialogue.severity import ARTEFACT, default_model
from agent.llm.base import Extractor
from agent.notify import Notifier
from agent.session.deps import SessionDeps
from agent.session.phrasebook import PhraseBook
from agent.session.recovery import attach_dialplan_messages, close_interrupted
from agent.session.router import Sessions
from agent.store.db import Store
from agent.store.queries import Retention, apply_retention
from agent.telephony.ari import AriClient
from agent.telephony.controller import Controller

log = logging.getLogger("standardiste")

RETENTION_EVERY_S: Final = 86400.0
"""Retention runs at start-up and then once a day, seconds."""
ADOPT_EVERY_S: Final = 5.0
"""How often the dialplan's voice messages for calls a stopped run left are looked for, seconds."""
WEB_STOP_S: Final = 10.0
"""The dashboard's thread is waited for this long at stop, seconds."""


@dataclass
class Service:
    config: Config
    deps: SessionDeps
    controller: Controller
    ari: AriClient
    mode_note: str
    """One line saying which recogniser answers (or that calls are voice messages), for the log."""
    sender: Sender | None = None
    """Delivers the SMS outbox; None when no route is configured."""
    background: Background = field(default_factory=Background)
    """The phrases rendered and the recognisers warmed after the start: stopped with the service."""


def sms_route(config: Config, ari: AriClient) -> Route | None:
    kind = REGISTRY.get(config.sms.route)
    return kind.build(config.sms.settings, ari.request) if kind is not None else None


def warm_up(plan: Dialplan) -> None:
    """Understand one utterance with the dialplan once, so every table is loaded before a call."""
    from datetime import datetime

    from agent.dialogue.policy import Conversation

    asyncio.run(Conversation(plan, datetime.now(plan.timezone)).turn(
        "Bonjour, c'est Madame Martin au 3 rue de la Paix à Saint-Paul-de-Vence, ça coule au 06 12 34 56 78"))


def build(config: Config, *, scripted_asr: Path | None = None, transcriber: Transcriber | None = None) -> Service:
    """Everything but the event loop; blocking (model loading, rendering): run it in a thread.
    `transcriber` replaces the installed recogniser (tests put a stand-in in the loop). The store is
    claimed first: a second controller on it stops before loading anything (StoreError)."""
    store = Store(config.paths.store, sole=True)
    background = Background()
    try:
        return _build(config, store, scripted_asr, transcriber, background)
    except BaseException:
        background.stop()
        store.close()
        raise


def _build(config: Config, store: Store, scripted_asr: Path | None, transcriber: Transcriber | None,
           background: Background) -> Service:
    from agent.engines import french_asr, load_asr, load_tts, production_llm, set_up_asr

    plans = config.dialplans.all()
    # Ready sooner at start (issue 22): the understanding's tables (the communes, the lemmas, the
    # severity model: 0.9 s here) load on a second thread while the voice loads and renders what a
    # call's first seconds say (onnxruntime lets go of the GIL while it synthesises). Both before
    # calls are taken: in the background after the start, CI51 had voice messages without their
    # prompt. (CI52 ran slower with this thread, but also with four test streams on two cores, as
    # CI51 and CI53 without it: the thread was not the cause.)
    def understand() -> None:
        for plan in plans:
            warm_up(plan)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-up") as pool:
        understood = pool.submit(understand)
        tts, note = load_tts(config.paths.models)
        log.info("%s", note)
        book = PhraseBook(tts, config.paths.cache, config.media.rate)
        for plan in plans:
            book.prepare(phrases.first_texts(plan))  # the rest in the background, below
        # What Asterisk plays by itself when the controller is down: before calls are taken (the
        # safety net must be there from the first call: the dialplan's voice message, a caller over
        # capacity; rendered once, it is kept with the prompts).
        fallback_later = book.render_fallback(config.paths.prompts, quick=True)
        understood.result()
    log.info("understanding: rules + learned severity layer (%s, trained on %s)", ARTEFACT.name,
             default_model().trained_on)
    # Rendered while the service already takes calls (a sentence not yet rendered is synthesised
    # when said): on a cold cache, this took 28 s on a loaded machine before the first call.
    book.prepare_in_background([t for plan in plans for t in phrases.fixed_texts(plan)], background,
                               then=(lambda: book.render_fallback(config.paths.prompts)) if fallback_later else None)
    vad = config.media.vad
    if vad.engine is VadEngine.SILERO and vad.silero_model is not None:
        from agent.audio.silero import preload

        preload(vad.silero_model)  # 170 ms, not on the event loop at the first call
    # The tables just loaded (communes, lemmas, phrases, models) are a hundred thousand objects that
    # live as long as the process: a full garbage collection over them took 90 ms here, long enough to
    # delay the 20 ms RTP frames of every call in progress (the phones' jitter buffers shift). Frozen,
    # the collector no longer walks them.
    gc.collect()
    gc.freeze()
    if transcriber is not None:
        mode = f"ASR: {transcriber.name} (given by the caller of build)"
    elif scripted_asr is not None:
        from agent.asr.scripted import ScriptedTranscriber

        # Timed with the real recogniser's stand-in model on the same audio (never a French one).
        transcriber = ScriptedTranscriber.load(scripted_asr, timer=lambda: load_asr(Path("/nonexistent"))[0])
        mode = f"ASR: {transcriber.name} from {scripted_asr} (tests and demos only)"
    else:
        transcriber = french_asr(config.paths.models)
        mode = (f"ASR: {transcriber.name}: full conversation" if transcriber is not None else
                "No French speech model installed (`make models`): every call is taken as a voice message")
    set_up_asr(transcriber, config.asr, config.media.rate,
               lambda: book.rendered_speech([t for plan in plans for t in phrases.first_texts(plan)]), background)
    extractor = production_llm(config.paths.models) if transcriber is not None else None
    if transcriber is not None:
        log.info("LLM: %s", f"{extractor.name}: fills what the rules did not understand" if extractor is not None
                 else "none (the production model is not installed; the stand-in is too weak for live calls): "
                      "the rules alone understand")
    turns = _turn_decider(config) if transcriber is not None else None
    config.paths.messages.mkdir(parents=True, exist_ok=True)
    ari = AriClient(config.ari.url, config.ari.username, config.ari.password, config.ari.app)
    route = sms_route(config, ari)
    calendar = CalDavCalendar(config.calendar) if config.calendar is not None else None
    routes: list[Route] = [r for r in (route, CalendarRoute(calendar) if calendar else None) if r is not None]
    sender = None if not routes else Sender(store, routes, config.sms.retry, config.dialplans.all(),
                                            settings=config.sms.settings)
    deps = SessionDeps(store=store, book=book, transcriber=transcriber, extractor=extractor, timing=config.call,
                       messages_dir=config.paths.messages, prompts_dir=config.paths.prompts,
                       plan_for=config.dialplans.for_did,
                       outbox=Outbox(route.name if route is not None else NO_ROUTE, sender,
                                     calendar=calendar is not None, settings=config.sms.settings),
                       calendars=Calendars(calendar), turns=turns)
    by_file = {plan.file: plan for plan in plans}
    close_interrupted(store, deps.outbox, by_file.get)
    sessions = Sessions(deps)
    controller = Controller(ari, config.media, sessions, max_calls=config.max_calls or default_max_calls(),
                            over_capacity=sessions.over_capacity)
    log.info("calls: %d conversation(s) at once (call.max_concurrent); a caller beyond them leaves a voice message",
             controller.max_calls)
    return Service(config, deps, controller, ari, mode, sender, background)


def _turn_decider(config: Config) -> TurnDecider | None:
    """The end-of-turn model when the VAD decides in pauses (media.vad.pause_ms > 0); without it (not
    installed, failed to load: one log line) the words alone decide, else the hangover."""
    vad = config.media.vad
    log.info("voice activity: %s", "Silero VAD" if vad.engine is VadEngine.SILERO else
             "webrtcvad (Silero's model is not installed, or media.vad.engine: webrtc)")
    if vad.pause_ms == 0:
        log.info("end of turn: %d ms of silence (media.vad.pause_ms: 0)", vad.hangover_ms)
        return None
    model = load_turn_model(config.paths.models / TURN_MODEL_DIR) if vad.turn_model else None
    log.info("end of turn: decided after %d ms of silence by the words%s, else %d ms",
             vad.pause_ms, f" and {model.name}" if model is not None else "", vad.hangover_ms)
    return TurnDecider(model) if model is not None else None


def simulation_extractor(models: Path) -> Extractor | None:
    """`standardiste simulate --llm auto`: the LLM for what the rules miss, or None (said on stderr)."""
    import sys

    from agent.engines import load_llm

    try:
        extractor, _ = load_llm(models)
    except (ImportError, RuntimeError) as exc:
        print(f"(no LLM: {exc})", file=sys.stderr)
        return None
    return extractor


def retention_rules(config: Config) -> list[Retention]:
    return [Retention(p.file, p.recordings_days, p.leads_days) for p in config.dialplans.all()]


async def _retention(service: Service, stop: asyncio.Event) -> None:
    rules = retention_rules(service.config)
    while not stop.is_set():
        try:
            recordings, calls = await service.deps.store.run(
                lambda conn: apply_retention(conn, rules, service.config.paths.messages))
        except Exception as exc:  # a store that cannot be written is in the log already: next time
            log.debug("retention not applied: %s", type(exc).__name__)
            recordings = calls = 0
        if recordings or calls:
            log.info("retention: %d recording(s) and %d call(s) past their keep time removed", recordings, calls)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RETENTION_EVERY_S)


async def _adopt_messages(service: Service, stop: asyncio.Event) -> None:
    """Every few seconds: the voice messages the dialplan took for calls a dead run left, to their leads."""
    adopt = attach_dialplan_messages(service.config.paths.messages)
    while not stop.is_set():
        try:
            attached = await service.deps.store.run(adopt)
        except Exception as exc:  # the store (full disk: it is in the log already): try again later
            log.debug("voice messages not attached: %s", type(exc).__name__)
            attached = 0
        if attached:
            log.info("%d voice message(s) the dialplan took for calls of a stopped run attached to their leads",
                     attached)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ADOPT_EVERY_S)


def setup_lines(service: Service) -> tuple[tuple[str, str], ...]:
    """What the dashboard's Réglages page shows (never a secret)."""
    cfg = service.config
    lines = [(f"Standard « {p.business} »", f"{p.trade.label}, {p.file}"
              + (f" — {len(p.sms.warnings)} modèle(s) de SMS trop long(s)" if p.sms.warnings else " — OK"))
             for p in cfg.dialplans.all()]
    lines.append(("Moteurs", service.mode_note))
    models = sorted(d.name for d in cfg.paths.models.iterdir() if d.is_dir()) if cfg.paths.models.is_dir() else []
    lines.append(("Modèles installés", ", ".join(models) or "aucun (make models)"))
    sms = cfg.sms
    kind = REGISTRY.get(sms.route)
    lines.append(("SMS", f"route {sms.route} ({kind.describe(sms.settings)})" if kind is not None
                  else "route none : aucun SMS n'est envoyé"))
    lines.append(("Agenda", f"CalDAV « {cfg.calendar.calendar} » sur {cfg.calendar.url}" if cfg.calendar
                  else "agenda local (les rendez-vous du standard seulement)"))
    return tuple(lines)


def _health(service: Service) -> Callable[[], list[str]]:
    """What is wrong with the service now, in French, for the banner on every dashboard page (the
    SMS failing are read from the store by the dashboard itself)."""
    def problems() -> list[str]:
        out = []
        if service.deps.transcriber is None:
            out.append("Aucun modèle de reconnaissance vocale français installé : chaque appel est pris en "
                       "message vocal (l'installateur : make models).")
        if service.deps.store.failing is not None:
            out.append("Le disque du standard refuse les écritures : les appels sont pris en message vocal, "
                       "mais les nouvelles demandes n'apparaissent plus ici. Prévenez l'installateur.")
        if service.config.calendar and service.deps.calendars.unreachable:
            out.append("Agenda injoignable au dernier appel : aucun créneau n'a été proposé, un rappel l'a été.")
        return out
    return problems


def _calendar_check(service: Service) -> Callable[[], Awaitable[str]]:
    async def check() -> str:
        from datetime import datetime, timedelta

        tz = service.config.dialplans.default.timezone
        now = datetime.now(tz)
        try:
            busy = await service.deps.calendars.busy(now, now + timedelta(days=1), 5.0)
        except Exception as exc:
            return f"Agenda injoignable : {type(exc).__name__ or 'délai dépassé'}."
        return f"Agenda lu : {len(busy)} plage(s) occupée(s) dans les prochaines 24 h."
    return check


async def _web(service: Service, stop: asyncio.Event) -> None:
    """The dashboard, inside the service, until `stop`; not started without a password set."""
    cfg = service.config.web
    if not cfg.enabled:
        return
    if not cfg.password_file.is_file():
        log.error("dashboard not started: no password set (run: standardiste set-password --config %s)",
                  service.config.file)
        return
    import uvicorn

    from agent.web.app import WebSettings, create_app
    from agent.web.auth import session_secret

    plan = service.config.dialplans.default
    outbox = service.deps.outbox
    app = create_app(WebSettings(store=service.config.paths.store, password_hash=cfg.password_file.read_text(),
                                 secret=session_secret(cfg.secret_file), basket_eur=plan.trade.basket_eur,
                                 conversion=cfg.conversion_rate, messages_dir=service.config.paths.messages,
                                 setup=setup_lines(service), sms_route=outbox.route,
                                 artisan_to=outbox.via(plan).artisan,
                                 check_calendar=_calendar_check(service) if service.config.calendar else None,
                                 health=_health(service), secure_cookies=cfg.secure_cookies,
                                 calls_loop=asyncio.get_running_loop()),
                     writer=service.deps.store)
    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the service handles SIGINT/SIGTERM and stops the dashboard with everything else

    # Its own thread and event loop: a page, a scrape or a flood of logins never holds the loop that
    # carries the calls' audio (the password hash runs in a thread of its own besides). At most
    # `max_connections` requests at once, the rest 503; X-Forwarded-For believed from the configured
    # proxies only.
    server = Server(uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False,
                                   lifespan="off", limit_concurrency=cfg.max_connections, backlog=64,
                                   proxy_headers=bool(cfg.trusted_proxies),
                                   forwarded_allow_ips=list(cfg.trusted_proxies) or None,
                                   timeout_keep_alive=5))
    log.info("dashboard on http://%s:%d/", cfg.host, cfg.port)
    thread = threading.Thread(target=server.run, name="dashboard", daemon=True)
    thread.start()
    await stop.wait()
    server.should_exit = True
    await asyncio.to_thread(thread.join, WEB_STOP_S)


async def serve(service: Service, stop: asyncio.Event | None = None, *, handle_signals: bool = True) -> None:
    """Run the controller until `stop` (or SIGINT/SIGTERM); release everything on the way out."""
    stop = stop or asyncio.Event()
    if handle_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    log.info("%s", service.mode_note)
    notifier = Notifier()
    runner = asyncio.create_task(service.controller.run(stop))
    watchdog = asyncio.create_task(_notify(notifier, service))
    retention = asyncio.create_task(_retention(service, stop))
    adopt = asyncio.create_task(_adopt_messages(service, stop))
    web = asyncio.create_task(_web(service, stop))
    sender = asyncio.create_task(service.sender.run(stop)) if service.sender is not None else None
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            runner.result()  # raises what stopped it
        else:
            runner.cancel()
            try:
                await runner
            except asyncio.CancelledError:
                pass
    finally:
        notifier.send("STOPPING=1")
        watchdog.cancel()
        stopper.cancel()
        retention.cancel()
        adopt.cancel()
        web.cancel()
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        if service.sender is not None:
            await service.sender.close()
        service.deps.calendars.close()
        await service.ari.close()
        await asyncio.to_thread(service.background.stop)
        await asyncio.to_thread(service.deps.store.close)


async def _notify(notifier: Notifier, service: Service) -> None:
    """READY=1 once ARI is connected and resynced, then the watchdog's pings (systemd, `make run`)."""
    if not notifier.enabled:
        return
    pings = asyncio.create_task(notifier.watchdog())
    try:
        await service.controller.ready.wait()
        notifier.send("READY=1")
        await pings
    finally:
        pings.cancel()
        notifier.close()


async def run_service(config: Config, *, scripted_asr: Path | None = None) -> None:
    service = await asyncio.to_thread(build, config, scripted_asr=scripted_asr)
    await serve(service)
