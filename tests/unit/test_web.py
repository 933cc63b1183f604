"""Issue 11: the dashboard on a real store (SQLite through the service's own writer), through
Starlette's test client: access control, CSRF, the login rate limit, masked numbers, the figures,
the follow-up of a lead, the CSV export and /metrics parsed by prometheus_client."""

from __future__ import annotations

import asyncio
import html
import json
import re
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.store.db import Store
from agent.store.outbox import enqueue
from agent.store.schema import LeadStatus
from agent.web.app import WebSettings, create_app
from agent.web.auth import hash_password, set_password, verify_password

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
from starlette.testclient import TestClient  # noqa: E402

PASSWORD = "un mot de passe solide"
CALLS = [  # caller, status, urgency, action, outcome, answered_ms, turn_ms
    ("+33612345678", LeadStatus.BOOKED, "normal", "booking", "completed", 80.0, 650.0),
    ("+33698765432", LeadStatus.TRANSFERRED, "critical", "transfer", "transferred", 120.0, 900.0),
    ("+33493123456", LeadStatus.MESSAGE, "urgent", "message", "completed", 1500.0, 1400.0),
    ("", LeadStatus.INFO, "normal", "info", "caller hung up", 90.0, 500.0),
]


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "s.db")

    async def fill() -> None:
        for i, (caller, status, urgency, action, outcome, answered, turn) in enumerate(CALLS):
            call_id = await s.open_call(channel_id=f"{i}.1", did="0493000001", caller_id=caller,
                                        dialplan="plombier.yaml", trade="plombier", business="Plomberie Martin")
            s.set_lead(call_id, name=f"Client {i}", address="3 rue de la Paix, Nice", problem="évier bouché",
                       urgency=urgency, action=action, status=status, phone=caller or None,
                       booking_start=datetime(2026, 12, 2, 14, 30).timestamp() if action == "booking" else None)
            s.add_turn(call_id, "caller", "Mon évier est bouché")
            if action == "transfer":
                s.add_action(call_id, "transfer", "PJSIP/artisan", "ringing")
                s.add_action(call_id, "transfer", "PJSIP/artisan", "bridged")
            trace = [{"event": "stasis_start", "ms": 0.0}, {"event": "answered", "ms": answered},
                     {"event": "end_of_utterance", "ms": 5000.0}, {"event": "asr_final", "ms": 5100.0},
                     {"event": "reply_first_frame", "ms": 5000.0 + turn}]
            s.end_call(call_id, outcome, trace).result()
        s.submit(lambda c: enqueue(c, key="1:artisan", call_id=1, kind="artisan", route="sip",
                                   recipient="PJSIP/artisan", body="x")).result()
    asyncio.run(fill())
    yield s
    s.close()


@pytest.fixture
def app(store: Store, tmp_path: Path) -> Any:
    return create_app(WebSettings(store=store.path, password_hash=hash_password(PASSWORD), secret="k" * 32,
                                  basket_eur=180, conversion=0.3, messages_dir=tmp_path), writer=store)


def _csrf(client: TestClient, path: str = "/connexion") -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert m, "no CSRF token in the form"
    return m.group(1)


def _login(client: TestClient) -> None:
    r = client.post("/connexion", data={"password": PASSWORD, "csrf": _csrf(client)})
    assert r.status_code == 200 and "<h1>À faire</h1>" in r.text


def test_nothing_answers_without_a_session(app: Any) -> None:
    client = TestClient(app, follow_redirects=False)
    for path in ("/", "/appels", "/appels/1", "/demandes", "/appels/1/enregistrement"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/connexion?" + urlencode({"suite": path}), path
    assert client.get("/demandes.csv").status_code == 401
    assert client.get("/metrics").status_code == 401  # not from loopback
    r = client.post("/demandes/1/suivi", data={"followup": "won"}, headers={"referer": "http://x/demandes"})
    assert r.status_code == 303 and r.headers["location"] == "/connexion?suite=%2Fdemandes&expire=1"
    assert TestClient(app, client=("127.0.0.1", 4000)).get("/metrics").status_code == 200  # the local Prometheus


def test_a_wrong_password_or_a_missing_csrf_token_is_refused_and_logins_are_rate_limited(app: Any) -> None:
    client = TestClient(app)
    assert client.post("/connexion", data={"password": PASSWORD}).status_code == 403  # no CSRF token
    token = _csrf(client)
    for _ in range(5):
        assert client.post("/connexion", data={"password": "faux", "csrf": token}).status_code == 401
    r = client.post("/connexion", data={"password": PASSWORD, "csrf": token})
    assert r.status_code == 429 and "Trop d'essais" in html.unescape(r.text)  # even the right one, for a minute
    other = TestClient(app, client=("10.0.0.9", 5000))
    _login(other)  # another client is not blocked


def test_the_session_cookie_is_httponly_and_strict(app: Any) -> None:
    client = TestClient(app, follow_redirects=False)
    r = client.post("/connexion", data={"password": PASSWORD, "csrf": _csrf(client)})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_the_home_page_figures_match_the_store(app: Any) -> None:
    client = TestClient(app)
    _login(client)
    page = client.get("/").text
    assert re.search(r'id="calls-1">4<', page) and re.search(r'id="leads">3<', page)  # the info call is no lead
    assert re.search(r'id="bookings">1<', page)
    assert "3 demandes en cours × 180 € de panier moyen × 30 % de conversion" in page and "162 €" in page
    assert "Décrochés en moins d'1 s" in page and ">75 %<" in page  # 3 of 4 answered within 1 s


def test_numbers_are_masked_in_lists_and_whole_on_the_lead_card(app: Any) -> None:
    client = TestClient(app)
    _login(client)
    for path in ("/appels", "/demandes"):
        page = re.sub(r'href="tel:[+0-9]+"', "", client.get(path).text)  # the callback button holds it
        assert "06 •• •• •• 78" in page and "+33612345678" not in page and "06 12 34 56 78" not in page, path
    assert "+33612345678" in client.get("/appels/1").text
    assert "masqué" in client.get("/appels").text  # the withheld caller


def test_the_calls_filter_and_the_lead_follow_up(app: Any, store: Store) -> None:
    client = TestClient(app)
    _login(client)
    page = client.get("/appels", params={"urgence": "critical"}).text
    assert "Client 1" in page and "Client 0" not in page
    assert "Client 2" in client.get("/appels", params={"q": "Client 2"}).text
    assert client.post("/demandes/1/suivi", data={"followup": "won"}).status_code == 403  # no CSRF token
    token = _csrf(client, "/demandes")
    assert client.post("/demandes/1/suivi", data={"followup": "won", "csrf": token}).status_code == 200
    assert store.read(lambda c: c.execute("SELECT followup FROM leads WHERE call_id = 1").fetchone()[0]) == "won"
    assert "Demandes gagnées (suivi) : 180 €" in client.get("/").text


def test_the_csv_export_opens_in_french_excel(app: Any) -> None:
    client = TestClient(app)
    _login(client)
    r = client.get("/demandes.csv")
    assert r.content.startswith(b"\xef\xbb\xbf") and r.headers["content-type"].startswith("text/csv")
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "appel;date;nom;téléphone;adresse;problème;urgence;action;rendez-vous;suivi"
    assert len(lines) == 4 and any(";06 12 34 56 78;" in line and ";rendez-vous;" in line for line in lines)


def test_metrics_parse_and_match_the_calls(app: Any) -> None:
    text = TestClient(app, client=("127.0.0.1", 4000)).get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    calls = {s.labels["outcome"]: s.value for s in families["standardiste_calls"].samples
             if s.name == "standardiste_calls_total"}
    assert calls == {"completed": 2, "transferred": 1, "caller hung up": 1}
    answer = {s.labels.get("le"): s.value for s in families["standardiste_answer_seconds"].samples
              if s.name.endswith("_bucket")}
    assert answer["0.1"] == 2 and answer["1.0"] == 3 and answer["+Inf"] == 4
    turns = [s for s in families["standardiste_turn_seconds"].samples if s.name.endswith("_count")]
    assert turns[0].value == 4
    over = {s.labels["stage"]: s.value for s in families["standardiste_stage_budget_overruns"].samples
            if s.name.endswith("_total")}
    assert over["reply_first_frame"] == 2  # 900 ms and 1400 ms against 800 ms
    transfers = {s.labels["result"]: s.value for s in families["standardiste_transfers"].samples
                 if s.name.endswith("_total")}
    assert transfers == {"bridged": 1}
    depth = families["standardiste_outbox_depth"].samples[0].value
    assert depth == 1
    assert not re.search(r"\+33\d|Client \d|evier", text)  # no personal data in labels


def test_the_password_is_a_salted_scrypt_hash_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "web-password"
    set_password(path, PASSWORD)
    stored = path.read_text()
    assert stored.startswith("scrypt$") and PASSWORD not in stored and path.stat().st_mode & 0o777 == 0o600
    assert verify_password(PASSWORD, stored) and not verify_password("autre chose", stored)
    assert hash_password(PASSWORD) != hash_password(PASSWORD)  # salted
    for weak in ("court", "motdepasse123", "Azertyuiop", "aaaaaaaaaaaa", "Standardiste!"):
        with pytest.raises(ValueError, match="too weak"):
            set_password(path, weak)
    assert json.dumps(stored)  # one line of text


def test_calls_in_progress_for_the_live_page(store: Store, app: Any) -> None:
    from agent.web.views import calls_in_progress

    async def ring() -> int:
        return await store.open_call(channel_id="9.1", did="", caller_id="+33611112222", dialplan="p.yaml",
                                     trade="plombier", business="Plomberie Martin")
    call_id = asyncio.run(ring())
    store.set_lead(call_id, urgency="urgent", name="Zoé").result()
    live = store.read(calls_in_progress)
    assert [(c["id"], c["caller"], c["stage"], c["urgency"]) for c in live] == [
        (call_id, "06 •• •• •• 22", "nom noté", "urgente")]
    client = TestClient(app)
    _login(client)
    assert '<script src="/static/live.js">' in client.get("/direct").text
    assert 'EventSource("/direct/flux")' in client.get("/static/live.js").text


def test_the_settings_page_sends_a_test_sms_to_the_artisan(store: Store, tmp_path: Path) -> None:
    async def calendar() -> str:
        return "Agenda lu : 2 plage(s) occupée(s) dans les prochaines 24 h."
    app = create_app(WebSettings(store=store.path, password_hash=hash_password(PASSWORD), secret="k" * 32,
                                 setup=(("SMS", "route sip (pjsip:{number})"),), sms_route="sip",
                                 artisan_to="PJSIP/artisan", check_calendar=calendar), writer=store)
    client = TestClient(app)
    _login(client)
    page = client.get("/reglages").text
    assert "route sip" in page
    token = _csrf(client, "/reglages")
    assert "Message de test mis en file" in client.post("/reglages/test", data={"test": "sms", "csrf": token}).text
    rows = store.read(lambda c: [dict(r) for r in c.execute("SELECT * FROM outbox WHERE kind = 'test'")])
    assert len(rows) == 1 and rows[0]["recipient"] == "PJSIP/artisan" and rows[0]["state"] == "pending"
    assert "2 plage(s)" in client.post("/reglages/test", data={"test": "calendar", "csrf": token}).text
    assert client.post("/reglages/test", data={"test": "sms"}).status_code == 403
