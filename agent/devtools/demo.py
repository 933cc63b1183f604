"""`make demo`: a whole call for a newcomer, on a private Asterisk, printed live.

A demo artisan phone registers; a scripted caller (a pjsua2 phone speaking espeak-ng French) calls
with the seed's sample emergency; the conversation prints as it happens, both sides, with the
reply latency of each turn; the emergency is put through to the artisan, who presses 1; the lead
is read back from the store at the end. Without a French speech model the recogniser is given the
caller's known words per utterance (and the demo says so); after `make models` it is Vosk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from agent.store.db import connect
from agent.store.reports import last_call_turns
from agent.store.schema import Who

DEMO_CALLER: Final = "+33612345678"
DEMO_TURNS: Final = ("Oui bonjour, j'ai une fuite d'eau importante dans ma cuisine, ça coule beaucoup !",
                     "Marie Dubois, 15 rue Victor Hugo à Nice.",
                     "Non, je ne sais pas où c'est !")
"""The seed's sample call (tests/data/scenarios/seed.yaml)."""
BOOKING_TURNS: Final = ("Bonjour, mon évier est bouché depuis ce matin.", "Jean Martin.",
                        "12 avenue Jean Médecin à Nice.", "Oui c'est ça.", "Le premier.")
"""The second call: a normal request booked in the artisan's agenda."""
WHISPER_WAIT_S: Final = 40.0
SMS_WAIT_S: Final = 10.0


def _printer(store: Path, stop: threading.Event) -> None:
    """Print each turn of the call in progress as the store records it."""
    seen = 0
    while not stop.is_set():
        time.sleep(0.1)
        if not store.exists():
            continue
        conn = connect(store, readonly=True)
        try:
            rows = last_call_turns(conn)
        except sqlite3.OperationalError:
            rows = []
        finally:
            conn.close()
        for who, text in rows[seen:]:
            print(f"  {'appelant' if who == Who.CALLER else 'agent   '} > {text}", flush=True)
        seen = len(rows)


def _agent_latencies(marks: list[tuple[str, float]]) -> list[float]:
    """From the call's trace: each end of utterance to the first frame of the reply that followed, s."""
    out = []
    for name, at in marks:
        if name == "end_of_utterance":
            firsts = [t for n, t in marks if n == "reply_first_frame" and t > at]
            if firsts:
                out.append(firsts[0] - at)
    return out


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """pjsua2 prints its start-up to the C stdout before any log setting applies."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)


def _show_sms(phones: Any, artisan: Any, caller: Any, artisan_count: int) -> None:
    """Wait for the SMS (SIP MESSAGEs through Asterisk) and print what each phone received."""
    phones.wait_until(lambda: len(artisan.messages) >= artisan_count, SMS_WAIT_S)
    phones.pump(1.0)  # the caller's confirmation follows the artisan's card
    for who, acc in (("l'artisan", artisan), ("l'appelant", caller)):
        for body in acc.messages:
            print(f"  [SMS reçu par {who}] {body}", flush=True)
        acc.messages.clear()


def _demo_calendar(root: Path) -> Any:
    """The demo artisan's calendar: a Radicale CalDAV server on loopback (a dev dependency)."""
    from agent.devtools.radicale import Radicale

    if root.exists():
        shutil.rmtree(root)  # a fresh agenda for each demo
    server = Radicale(root).start()
    server.calendar()
    return server


def _events(calendar: Any, tz: Any) -> list[str]:
    try:
        found = calendar.calendar().search(event=True)
    except Exception as exc:
        return [f"  (the calendar could not be read: {type(exc).__name__})"]
    out = []
    for ev in found:
        c = ev.icalendar_component
        start = c.get("dtstart").dt.astimezone(tz)
        description = str(c.get("description")).replace("\n", "\n    ")
        out.append(f"  {start:%d/%m/%Y %H:%M}  {c.get('summary')}\n    {description}")
    return out


def run_demo(run_dir: Path) -> int:
    from agent.admin import setup_logging
    from agent.app import build, serve
    from agent.config import load_config
    from agent.devtools.asterisk import ARTISAN_USER, SOFTPHONE_USER
    from agent.devtools.phones import Phones, agent_quiet, converse, turn_latencies
    from agent.devtools.run import dev_asterisk, stop_on_sigterm
    from agent.devtools.speech import speech_files
    from agent.engines import french_asr
    from agent.store.db import StoreError
    from agent.store.queries import leads

    setup_logging("warning")
    stop_on_sigterm()
    run_dir = run_dir.resolve()
    store = run_dir / "standardiste.db"
    ast = dev_asterisk(run_dir / "demo", sip_port=0)
    ast.render()
    calendar = _demo_calendar(ast.run_dir / "radicale")
    config = load_config(ast.controller_config(ast.run_dir / "standardiste.yaml", store=store,
                                               extra=calendar.config_lines()))
    work = Path(tempfile.mkdtemp(prefix="sd-demo-"))
    scripted = None
    if french_asr(config.paths.models) is None:
        scripted = work / "caller-words.json"
        scripted.write_text(json.dumps({"calls": [list(DEMO_TURNS), list(BOOKING_TURNS)]}, ensure_ascii=False))
        print("Note: no French speech model is installed (`make models`), so the recogniser is GIVEN the caller's\n"
              "known words for each utterance. Everything else is real: Asterisk, the phones, the voice\n"
              "activity detection, the dialogue, the synthesised French, the transfer and the store.\n", flush=True)
    print(f"Starting a private Asterisk {ast.install.version} and the receptionist ...", flush=True)
    ast.start()
    try:
        service = build(config, scripted_asr=scripted)
    except StoreError as exc:  # `make run` on the same development store
        ast.stop()
        calendar.stop()
        print(f"error: {exc}")
        return 1
    print(f"{service.mode_note}\n", flush=True)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stop = asyncio.Event()
    served = asyncio.run_coroutine_threadsafe(serve(service, stop, handle_signals=False), loop)
    asyncio.run_coroutine_threadsafe(asyncio.wait_for(service.controller.ready.wait(), 20), loop).result(25)
    with _quiet_stdout():
        phones = Phones()
    printing = threading.Event()
    printer = threading.Thread(target=_printer, args=(store, printing), daemon=True)
    try:
        server = f"127.0.0.1:{ast.ports.sip}"
        artisan = phones.artisan(server, ARTISAN_USER, ast.artisan_password, work)
        if not phones.wait_until(lambda: artisan.registered, 10):
            print("error: the demo artisan phone could not register")
            return 1
        artisan.answer_after_s = 1.5
        # The caller's mobile registers too, so that the confirmation SMS reaches it; it answers nothing.
        caller = phones.artisan(server, SOFTPHONE_USER, ast.softphone_password, work)
        caller.answer_code = None
        if not phones.wait_until(lambda: caller.registered, 10):
            print("error: the demo caller phone could not register")
            return 1
        print("The demo artisan's phone is registered (PJSIP/artisan). A caller dials in:\n", flush=True)
        printer.start()
        call = phones.call(caller, ast.sip_uri, work / "caller-heard.wav", caller_number=DEMO_CALLER)
        if not phones.wait_until(lambda: call.confirmed, 10):
            print(f"error: the call was not answered (SIP {call.status})")
            return 1
        converse(phones, call, speech_files(work, DEMO_TURNS))
        if not phones.wait_until(lambda: bool(artisan.incoming) and artisan.incoming[0].confirmed, WHISPER_WAIT_S):
            print("error: the artisan's phone never rang")
            return 1
        leg = artisan.incoming[0]
        print("  [le téléphone de l'artisan sonne ; il décroche et entend le résumé]", flush=True)
        phones.wait_until(lambda: agent_quiet(leg, leg.media_active_at or 0.0, 0.8), WHISPER_WAIT_S)
        leg.press("1")
        print("  [l'artisan appuie sur 1 : l'appelant et l'artisan sont en ligne, sans l'agent]", flush=True)
        phones.pump(3.0)
        call.hang_up()
        phones.wait_until(lambda: leg.ended, 5)
        latencies = turn_latencies(call, call.heard())
        traced = service.controller.finished[-1].trace.marks if service.controller.finished else []
        _show_sms(phones, artisan, caller, 1)
        print("\nA second caller, with a blocked sink, books a visit:\n", flush=True)
        second = phones.call(caller, ast.sip_uri, work / "caller-heard-2.wav", caller_number=DEMO_CALLER)
        if not phones.wait_until(lambda: second.confirmed, 10):
            print(f"error: the second call was not answered (SIP {second.status})")
            return 1
        converse(phones, second, speech_files(work, BOOKING_TURNS))
        phones.wait_until(lambda: second.ended, 30)
        _show_sms(phones, artisan, caller, 2)
        printing.set()
        printer.join(2)
        print("\nReply latency, per caller turn (first call):\n"
              "  at the caller's phone (the caller stops speaking -> the reply is heard): "
              + ", ".join(f"{x * 1000:.0f} ms" for x in latencies) + "\n"
              "  inside the receptionist (end of utterance decided -> first reply frame sent): "
              + ", ".join(f"{x * 1000:.0f} ms" for x in _agent_latencies(traced)) + "\n"
              "  (the difference is mostly the 700 ms of silence that tells the caller has finished)", flush=True)
    finally:
        printing.set()
        phones.close()
        loop.call_soon_threadsafe(stop.set)
        served.result(30)
        loop.call_soon_threadsafe(loop.stop)
        ast.stop()
        events = _events(calendar, config.dialplans.default.timezone)
        calendar.stop()
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    lead = leads(conn)[-1]
    conn.close()
    print(f"\nThe lead, read back from the store ({store}):")
    print(json.dumps(lead, ensure_ascii=False, indent=2))
    print(f"\nThe artisan's calendar (a CalDAV server, Radicale, at {calendar.url}):")
    for line in events or ["  (no event: see the outbox with .venv/bin/standardiste call ID)"]:
        print(line)
    print("\nAll leads: .venv/bin/standardiste leads --json")
    return 0
