"""Issue 10, SMS: what a call causes, the outbox with its retries, the HTTP and spool routes on real
servers and files, restarts and kill -9 (the SIP route on a real Asterisk: test_sms_live.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.actions.delivery import Outbox, RetryPolicy, Sender
from agent.actions.routes import RouteError, via
from agent.actions.routes.http import HttpRoute, HttpSettings
from agent.actions.routes.spool import SpoolRoute, SpoolSettings
from agent.dialogue.dialplan import builtin_dialplan, load_dialplan
from agent.dialogue.sms_texts import length, render, to_gsm
from agent.store.db import Store, connect
from agent.store.outbox import enqueue, messages
from agent.store.schema import LeadStatus
from agent.yamlnode import ConfigError
from tests.conftest import REPO
from tests.provider import Provider

PLAN = builtin_dialplan("plombier")
MOBILE = "+33612345678"
LANDLINE = "+33493123456"
FAST = RetryPolicy(max_attempts=5, first_retry_s=0.05, max_retry_s=0.2)


# --- texts ------------------------------------------------------------------------------------------
def test_lengths_are_counted_in_gsm_units() -> None:
    assert (length("a" * 160).encoding, length("a" * 160).parts) == ("GSM-7", 1)
    assert length("a" * 161).parts == 2
    assert length("€" * 80).units == 160  # an escaped character counts two
    assert (length("fenêtre").encoding, length("ê" * 70).parts, length("ê" * 71).parts) == ("UCS-2", 1, 2)
    assert length("😀" * 35).units == 70  # outside the BMP: two UTF-16 units
    assert to_gsm("fenêtre, reçu, cœur : « oui »") == 'fenetre, recu, coeur : " oui "'
    assert length(to_gsm("fenêtre")).encoding == "GSM-7"


def test_a_template_is_filled_cut_and_folded() -> None:
    text = render("[{urgency}] {name} : {problem}", {"urgency": "URGENT", "name": "Zoé Lefèvre",
                                                     "problem": "la fenêtre " * 20})
    assert text.startswith("[URGENT] Zoé Lefèvre : la fenetre")
    assert text.endswith("…") or text.endswith("...")
    assert len(text) < 110


def _dialplan(tmp_path: Path, sms: str) -> Path:
    src = (REPO / "agent/dialogue/dialplans/plombier.yaml").read_text()
    start = src.index("sms:")
    end = src.index("faq:")
    path = tmp_path / "plan.yaml"
    path.write_text(src[:start] + sms + src[end:])
    return path


def test_check_config_flags_a_template_longer_than_one_sms(tmp_path: Path) -> None:
    path = _dialplan(tmp_path, "sms:\n  artisan: \"{name} {phone} {address} {problem} " + "x" * 80 + "\"\n")
    plan = load_dialplan(path)
    assert any("sms.artisan" in w and "over one SMS (160)" in w for w in plan.sms.warnings)
    out = subprocess.run([str(REPO / ".venv/bin/standardiste"), "check-config", str(path)],
                         capture_output=True, text=True, check=True)
    assert "sms.artisan: about" in out.stdout + out.stderr
    assert not load_dialplan(_dialplan(tmp_path, "sms:\n  artisan: \"{name} {phone}\"\n")).sms.warnings
    for trade in ("plombier", "serrurier", "vitrier", "couvreur", "chauffagiste", "electricien", "paysagiste",
                  "nettoyage"):
        assert not builtin_dialplan(trade).sms.warnings, trade  # the examples fit in one SMS


@pytest.mark.parametrize(("sms", "key"), [
    ("sms:\n  caller: \"RDV {date}\"\n", "sms.caller"),
    ("sms:\n  artisan_to: \"0493\"\n", "sms.artisan_to"),
    ("sms:\n  digest: \"25:00\"\n", "sms.digest"),
])
def test_bad_sms_settings_name_the_key(tmp_path: Path, sms: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_dialplan(_dialplan(tmp_path, sms))


# --- what a call causes -----------------------------------------------------------------------------
def _call(store: Store, *, caller: str | None = MOBILE, status: LeadStatus = LeadStatus.BOOKED,
          urgency: str = "normal", refused: bool = False, phone: str | None = None) -> int:
    async def open_() -> int:
        return await store.open_call(channel_id="1.1", did="", caller_id=caller or "", dialplan=PLAN.file,
                                     trade="plombier", business=PLAN.business)
    call_id = asyncio.run(open_())
    start = datetime(2026, 12, 2, 14, 30, tzinfo=PLAN.timezone).timestamp()
    store.set_lead(call_id, name="Zoé Lefèvre", address="3 rue de la Paix, 06000 Nice", problem="évier bouché",
                   urgency=urgency, status=status, action="booking" if status is LeadStatus.BOOKED else "message",
                   booking_start=start if status is LeadStatus.BOOKED else None, sms_refused=int(refused),
                   phone=phone or caller).result()
    return call_id


def _end(store: Store, call_id: int, outbox: Outbox) -> list[dict[str, Any]]:
    store.end_call(call_id, "hangup", [], then=outbox.after_call(PLAN, call_id)).result()
    return store.read(lambda c: messages(c, call_id))


def test_a_booking_sends_the_card_to_the_artisan_and_the_date_to_the_caller(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    call_id = _call(store)
    sent = {m["kind"]: m for m in _end(store, call_id, Outbox("http"))}
    assert sent["artisan"]["recipient"] == "PJSIP/artisan"
    assert sent["artisan"]["body"] == ("[normal] Zoé Lefèvre, 06 12 34 56 78, 3 rue de la Paix, 06000 Nice : "
                                       "évier bouché. RDV mer 2/12 14h30")
    assert sent["caller"]["recipient"] == MOBILE
    assert sent["caller"]["body"] == ("Plomberie Martin : RDV confirmé mercredi 2 décembre à 14 h 30, 3 rue de la "
                                      "Paix, 06000 Nice. Pour le déplacer, rappelez-nous.")
    # The end written again (a blind transfer's second part) queues nothing twice.
    assert len(_end(store, call_id, Outbox("http"))) == 2
    store.close()


@pytest.mark.parametrize(("caller", "refused", "status"), [
    (LANDLINE, False, LeadStatus.BOOKED),     # a landline gets no SMS
    (None, False, LeadStatus.BOOKED),         # nor a withheld number
    (MOBILE, True, LeadStatus.BOOKED),        # nor a caller who said no
    (MOBILE, False, LeadStatus.TRANSFERRED),  # they spoke to the artisan
])
def test_no_sms_to_the_caller(tmp_path: Path, caller: str | None, refused: bool, status: LeadStatus) -> None:
    store = Store(tmp_path / "s.db")
    call_id = _call(store, caller=caller, refused=refused, status=status)
    kinds = [m["kind"] for m in _end(store, call_id, Outbox("http"))]
    assert kinds == ["artisan"]
    store.close()


def test_a_caller_who_gave_a_mobile_from_a_landline_gets_the_confirmation_there(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    call_id = _call(store, caller=LANDLINE, phone="+33698765432", status=LeadStatus.MESSAGE)
    sent = {m["kind"]: m for m in _end(store, call_id, Outbox("http"))}
    assert sent["caller"]["recipient"] == "+33698765432"
    assert "L'artisan vous rappelle" in sent["caller"]["body"]
    store.close()


def test_without_a_route_nothing_is_queued_and_the_call_says_so(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    call_id = _call(store)
    assert _end(store, call_id, Outbox("none")) == []
    actions = store.read(lambda c: [dict(r) for r in c.execute("SELECT * FROM actions WHERE call_id = ?",
                                                                     (call_id,))])
    assert [(a["kind"], a["result"], a["reason"]) for a in actions] == [("sms", "not sent", "no SMS route configured")]
    store.close()


def test_calls_a_killed_run_left_open_are_closed_at_start_with_their_sms_queued_once(tmp_path: Path) -> None:
    """kill -9 mid-call: the call's end never ran. The next start closes it and queues what its end
    would have (the card; an emergency cut while the artisan's phone rang counts as not reached)."""
    from agent.session.recovery import close_interrupted

    store = Store(tmp_path / "s.db")
    booked = _call(store)
    ringing = _call(store, status=LeadStatus.NEW, urgency="critical")
    store.set_lead(ringing, action="transfer").result()
    ended = _call(store)
    _end(store, ended, Outbox("http"))
    plans = {PLAN.file: PLAN}.get
    assert close_interrupted(store, Outbox("http"), plans) == 2
    assert close_interrupted(store, Outbox("http"), plans) == 0  # a second start finds nothing open
    rows = store.read(lambda c: [dict(r) for r in c.execute(
        "SELECT c.id, c.outcome, l.status, l.reason FROM calls c JOIN leads l ON l.call_id = c.id ORDER BY c.id")])
    assert [(r["outcome"], r["status"]) for r in rows] == [
        ("interrupted: controller restarted", "booked"), ("interrupted: controller restarted", "transfer_failed"),
        ("hangup", "booked")]
    queued = [(m["call_id"], m["kind"]) for m in store.read(messages)]
    assert sorted(queued) == [(booked, "artisan"), (booked, "caller"), (ringing, "artisan"), (ringing, "caller"),
                              (ended, "artisan"), (ended, "caller")]
    store.close()


def test_the_dialplans_voice_message_for_a_call_of_the_store_goes_to_its_lead(tmp_path: Path) -> None:
    from agent.session.recovery import attach_dialplan_messages

    store = Store(tmp_path / "s.db")
    call_id = _call(store, status=LeadStatus.NEW)  # channel "1.1"
    messages = tmp_path / "messages"
    messages.mkdir()
    theirs, ours, unknown = (messages / n for n in ("message-1795000000-1.1.wav", "message-1795000000-1.wav",
                                                     "message-1795000000-9.9.wav"))
    for wav in (theirs, ours, unknown):
        wav.write_bytes(b"RIFF")
    adopt = attach_dialplan_messages(messages)
    assert store.run_sync(adopt) == 0  # still being recorded (just written)
    for wav in (theirs, ours, unknown):
        os.utime(wav, (time.time() - 5,) * 2)
    assert store.run_sync(adopt) == 1
    assert store.run_sync(adopt) == 0  # settled, not looked up again
    store.run_sync(lambda c: c.execute("UPDATE leads SET recording = NULL"))
    assert store.run_sync(adopt) == 0  # remembered: a recording is attached once
    assert store.run_sync(attach_dialplan_messages(messages)) == 1  # a new run looks again
    assert store.run_sync(attach_dialplan_messages(messages)) == 0  # the lead has one now
    theirs.unlink()
    assert store.run_sync(adopt) == 0  # removed (retention): forgotten, no error
    rows = store.read(lambda c: [r["recording"] for r in c.execute("SELECT recording FROM leads")])
    assert rows == [str(theirs)] and call_id == 1
    store.close()


def test_the_caller_saying_no_sms_is_kept_on_the_lead() -> None:
    from agent.dialogue.policy import Conversation

    got: dict[str, str] = {}
    conv = Conversation(PLAN, datetime(2026, 12, 1, 10, tzinfo=PLAN.timezone), MOBILE,
                        on_field=lambda k, v: got.update({k: v}))
    asyncio.run(conv.turn("Mon évier est bouché, et pas de SMS s'il vous plaît"))
    assert conv.lead.sms_refused and got["sms_refused"] == "1"


def test_normal_leads_wait_for_the_digest(tmp_path: Path) -> None:
    import dataclasses

    from agent.actions import sms as rules

    plan = dataclasses.replace(PLAN, sms=dataclasses.replace(PLAN.sms, digest=datetime(2026, 1, 1, 18).time()))
    store = Store(tmp_path / "s.db")
    normal = _call(store, urgency="normal")
    urgent = _call(store, urgency="urgent")
    for call_id in (normal, urgent):
        store.end_call(call_id, "hangup", [], then=Outbox("http").after_call(plan, call_id)).result()
    queued = store.read(lambda c: [(m["call_id"], m["kind"]) for m in messages(c)])
    assert (normal, "artisan") not in queued and (urgent, "artisan") in queued and (normal, "caller") in queued
    now = datetime.now(plan.timezone)
    if now.hour >= 18:  # the leads were made after today's digest: they go in tomorrow's
        now += timedelta(days=1)
    before, after = now.replace(hour=17, minute=59), now.replace(hour=18, minute=1)
    assert not store.submit(lambda c: rules.digest(c, plan, before, via("http", None, plan))).result()
    assert store.submit(lambda c: rules.digest(c, plan, after, via("http", None, plan))).result()
    assert not store.submit(lambda c: rules.digest(c, plan, after, via("http", None, plan))).result()  # once a day
    digest = store.read(lambda c: [m for m in messages(c) if m["kind"] == "digest"])
    assert len(digest) == 1 and "1 demande(s)" in digest[0]["body"] and "evier bouche" in to_gsm(
        digest[0]["body"]).replace("é", "e")
    store.close()


# --- the HTTP route on a real local server ------------------------------------------------------------
def _deliver(store: Store, route: Any, until: float = 5.0) -> None:
    async def go() -> None:
        sender = Sender(store, route, FAST)
        end = time.monotonic() + until
        while time.monotonic() < end:
            await sender.tick()
            if not store.read(lambda c: c.execute(
                    "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')").fetchone()[0]):
                return
            await asyncio.sleep(0.05)
    asyncio.run(go())


def test_the_http_route_delivers_on_the_third_try_and_once_only(tmp_path: Path, provider: str) -> None:
    store = Store(tmp_path / "s.db")
    store.submit(lambda c: enqueue(c, key="7:caller", call_id=None, kind="caller", route="http", recipient=MOBILE,
                                   body='RDV "mercredi" à 14 h')).result()
    settings = HttpSettings(url=provider, body='{"to": "{to}", "message": "{text}", "sender": "PLOMBERIE"}',
                            headers={"Authorization": "Bearer {secret}"}, secret="s3cret")
    _deliver(store, HttpRoute(settings))
    assert len(Provider.received) == 3
    headers, body = Provider.received[-1]
    assert json.loads(body) == {"to": MOBILE, "message": 'RDV "mercredi" à 14 h', "sender": "PLOMBERIE"}
    assert headers["Authorization"] == "Bearer s3cret" and headers["Idempotency-Key"] == "7:caller"
    row = store.read(messages)[0]
    assert (row["state"], row["attempts"]) == ("sent", 3)
    _deliver(store, HttpRoute(settings), until=0.3)
    assert len(Provider.received) == 3  # sent is sent
    store.close()


def test_a_route_that_stays_down_gives_up_and_shows_failed(tmp_path: Path, provider: str) -> None:
    Provider.fail = 100
    try:
        store = Store(tmp_path / "s.db")
        store.submit(lambda c: enqueue(c, key="8:artisan", call_id=None, kind="artisan", route="http",
                                       recipient=MOBILE, body="x")).result()
        _deliver(store, HttpRoute(HttpSettings(url=provider, body="{text}", content_type="text/plain")))
        row = store.read(messages)[0]
        assert (row["state"], row["attempts"], row["last_error"]) == ("failed", FAST.max_attempts, "HTTP 500")
        store.close()
    finally:
        Provider.fail = 2


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(max_attempts=10, first_retry_s=5, max_retry_s=60)
    assert [policy.delay(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


# --- the spool route ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["gammu", "smstools"])
def test_the_spool_route_drops_a_whole_file(tmp_path: Path, fmt: str) -> None:
    route = SpoolRoute(SpoolSettings(tmp_path, fmt))
    asyncio.run(route.send("12:caller", MOBILE, "Plomberie Martin : RDV confirmé"))
    asyncio.run(route.send("12:caller", MOBILE, "Plomberie Martin : RDV confirmé"))  # tried again: same file
    files = sorted(p.name for p in tmp_path.iterdir())
    if fmt == "gammu":
        assert files == ["OUTA_+33612345678_12-caller.txt"]
        assert (tmp_path / files[0]).read_text() == "Plomberie Martin : RDV confirmé"
    else:
        assert files == ["standardiste-12-caller"]
        assert (tmp_path / files[0]).read_text() == ("To: 33612345678\nAlphabet: UTF-8\n\n"
                                                     "Plomberie Martin : RDV confirmé\n")
    assert (tmp_path / files[0]).stat().st_mode & 0o777 == 0o640  # the SMS daemon's group reads it
    with pytest.raises(RouteError) as err:
        asyncio.run(SpoolRoute(SpoolSettings(tmp_path / "missing")).send("1:x", MOBILE, "x"))
    assert err.value.retryable and not (tmp_path / "missing").exists()  # the daemon's folder: never made by us


# --- restarts ---------------------------------------------------------------------------------------
KILLED_AFTER_COMMIT = """
import os, signal, sys
from agent.store.db import Store, connect
from agent.store.outbox import enqueue
store = Store(__import__("pathlib").Path(sys.argv[1]))
store.submit(lambda c: enqueue(c, key="9:caller", call_id=None, kind="caller", route="spool",
                               recipient="+33612345678", body="confirmé")).result()
os.kill(os.getpid(), signal.SIGKILL)  # committed, never sent
"""


def test_kill_9_between_commit_and_send_loses_nothing_and_sends_once(tmp_path: Path) -> None:
    db, spool = tmp_path / "s.db", tmp_path / "spool"
    spool.mkdir()
    proc = subprocess.run([sys.executable, "-c", KILLED_AFTER_COMMIT, str(db)], cwd=REPO)
    assert proc.returncode == -signal.SIGKILL
    store = Store(db)
    # A message a killed sender had claimed (state `sending`) is put back and sent once too.
    store.submit(lambda c: enqueue(c, key="10:artisan", call_id=None, kind="artisan", route="spool",
                                   recipient=MOBILE, body="carte")).result()
    store.submit(lambda c: c.execute("UPDATE outbox SET state = 'sending' WHERE key = '10:artisan'")).result()

    async def restart() -> None:
        stop = asyncio.Event()
        sender = Sender(store, SpoolRoute(SpoolSettings(spool)), FAST)
        task = asyncio.create_task(sender.run(stop))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if len(list(spool.iterdir())) == 2:
                break
        stop.set()
        sender.poke()
        await task
    asyncio.run(restart())
    assert sorted(p.name for p in spool.iterdir()) == ["OUTA_+33612345678_10-artisan.txt",
                                                       "OUTA_+33612345678_9-caller.txt"]
    assert [m["state"] for m in store.read(messages)] == ["sent", "sent"]
    store.close()
    assert os.stat(db).st_size > 0


def test_the_controller_stopped_with_messages_pending_sends_them_after_restart(tmp_path: Path, provider: str) -> None:
    """`standardiste run` as a real process (Asterisk need not be up: the outbox does not wait for it)."""
    from agent.devtools.asterisk import DEFAULT_CACHE
    from tests.conftest import ControllerProcess

    (tmp_path / "ari-password").write_text("a-long-random-test-password\n")
    db = tmp_path / "s.db"
    config = tmp_path / "standardiste.yaml"
    config.write_text(f"""ari:
  url: http://127.0.0.1:9
  password_file: {tmp_path / 'ari-password'}
paths:
  prompts: {tmp_path / 'prompts'}
  messages: {tmp_path / 'messages'}
  models: {REPO / 'models'}
  store: {db}
  cache: {DEFAULT_CACHE / 'phrases'}
dialplans:
  default: plombier
sms:
  route: http
  http: {{url: "{provider}", body: "{{text}}", content_type: text/plain}}
  retry: {{max_attempts: 100, first_delay_seconds: 0.2, max_delay_seconds: 1}}
""")
    store = Store(db)
    for key in ("1:artisan", "1:caller"):
        store.submit(lambda c, k=key: enqueue(c, key=k, call_id=None, kind=k.split(":")[1], route="http",
                                              recipient=MOBILE, body=f"message {k}")).result()
    store.close()
    Provider.fail = 10**6  # the provider is down
    first = ControllerProcess(config, tmp_path / "run-1.log").start(wait_ready=False)
    try:
        end = time.monotonic() + 60
        while len(Provider.received) < 4 and time.monotonic() < end:
            time.sleep(0.1)
        assert len(Provider.received) >= 4, first.log()
    finally:
        first.stop()
    states = [m["state"] for m in messages(connect(db, readonly=True))]
    assert set(states) <= {"pending", "sending"} and len(states) == 2  # nothing lost, nothing given up
    Provider.fail = len(Provider.received)  # the provider is back
    second = ControllerProcess(config, tmp_path / "run-2.log").start(wait_ready=False)
    try:
        end = time.monotonic() + 60
        while len(Provider.delivered) < 2 and time.monotonic() < end:
            time.sleep(0.1)
        time.sleep(1.0)  # nothing more arrives
    finally:
        second.stop()
    assert sorted(Provider.delivered) == ["1:artisan", "1:caller"], second.log()
    assert [m["state"] for m in messages(connect(db, readonly=True))] == ["sent", "sent"]
