"""Issue 23: the dashboard as a to-do list, on a real store (SQLite through the service's writer) and
Starlette's test client: what needs the artisan comes first (a critical call not reached before
anything), one-tap callback, follow-up with an amount counted in the revenue, a change sent after
the session expired is refused and said so, and login returns to the page; the service's health in
French on every page; En direct links each call and says its stage; the CSV keeps numbers as text."""

from __future__ import annotations

import html
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from agent.store.dashboard import TodoKind, todo
from agent.store.db import Store
from agent.web.app import WebSettings, create_app
from agent.web.auth import hash_password
from agent.web.views import TZ, calls_in_progress
from tests.dashboard_seed import seed

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
from starlette.testclient import TestClient  # noqa: E402

PASSWORD = "un mot de passe solide"
NO_MODEL = "Aucun modèle de reconnaissance vocale français installé"


@pytest.fixture
def seeded(tmp_path: Path) -> Any:
    store = Store(tmp_path / "s.db")
    ids = seed(store, tmp_path / "messages")
    yield store, ids
    store.close()


def _app(store: Store, tmp_path: Path, health: list[str] | None = None) -> Any:
    return create_app(WebSettings(store=store.path, password_hash=hash_password(PASSWORD), secret="k" * 32,
                                  messages_dir=tmp_path / "messages", health=lambda: list(health or [])),
                      writer=store)


def _token(client: TestClient, path: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert m
    return m.group(1)


def _login(client: TestClient, suite: str = "") -> Any:
    return client.post("/connexion", data={"password": PASSWORD, "csrf": _token(client, "/connexion"),
                                            "suite": suite})


def _cards(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'<article class="todo k-\w+" id="todo-(\d+)"', page)]


def test_the_to_do_list_puts_the_unreached_emergency_first(seeded: Any) -> None:
    store, ids = seeded
    items = store.read(lambda c: todo(c, TZ))
    assert [(i.kind, i.lead.call_id) for i in items] == [
        (TodoKind.UNREACHED, ids.unreached), (TodoKind.MESSAGE, ids.message), (TodoKind.CALL_BACK, ids.hung_up),
        (TodoKind.BOOKING, ids.booked)]  # not the transfer put through, the question, the call in progress


def test_home_shows_cards_with_a_callback_link_and_done_removes_one(seeded: Any, tmp_path: Path) -> None:
    store, ids = seeded
    client = TestClient(_app(store, tmp_path))
    _login(client)
    page = client.get("/").text
    assert _cards(page)[0] == ids.unreached
    first = page[page.index(f'id="todo-{ids.unreached}"'):]
    first = first[:first.index("</article>")]
    assert "URGENCE NON JOINTE" in first.upper() and 'href="tel:+33611223344"' in first
    assert "Fuite d'eau au plafond" in html.unescape(first) and "il y a 12 min" in first
    r = client.post(f"/demandes/{ids.unreached}/suivi", data={"followup": "called_back", "suite": "/",
                                                                "csrf": _token(client, "/")})
    assert r.status_code == 200 and r.url.path == "/"
    assert ids.unreached not in _cards(r.text) and _cards(r.text)[0] == ids.message


def test_a_won_amount_counts_in_the_revenue_and_the_follow_up_filters(seeded: Any, tmp_path: Path) -> None:
    store, ids = seeded
    client = TestClient(_app(store, tmp_path))
    _login(client)
    r = client.post(f"/demandes/{ids.booked}/suivi", data={"followup": "won", "montant": "1 250",
                                                            "csrf": _token(client, "/demandes")})
    assert r.status_code == 200
    assert store.read(lambda c: c.execute("SELECT won_eur FROM leads WHERE call_id = ?", (ids.booked,)).fetchone()[0]) \
        == 1250
    home = html.unescape(client.get("/").text)
    assert "1 250 € gagnés (1 montant saisi sur 1)" in home
    won = client.get("/demandes", params={"suivi": "won"}).text
    assert "Jean Martin" in won and "Sophie Leroy" not in won
    bad = client.post(f"/demandes/{ids.booked}/suivi", data={"followup": "won", "montant": "beaucoup",
                                                              "csrf": _token(client, "/demandes")})
    assert bad.status_code == 400 and "Montant illisible" in bad.text


def test_a_change_after_the_session_expired_is_refused_and_login_returns_to_the_page(seeded: Any,
                                                                                    tmp_path: Path) -> None:
    store, ids = seeded
    client = TestClient(_app(store, tmp_path))
    r = client.post(f"/demandes/{ids.hung_up}/suivi", data={"followup": "lost"},
                    headers={"referer": "http://127.0.0.1:8080/demandes"})
    assert r.url.path == "/connexion" and "Votre session a expiré" in html.unescape(r.text)
    assert store.read(lambda c: c.execute("SELECT followup FROM leads WHERE call_id = ?",
                                          (ids.hung_up,)).fetchone()[0]) == "new"  # refused, and said so
    assert 'name="suite" value="/demandes"' in r.text
    back = _login(client, "/demandes")
    assert back.url.path == "/demandes"
    assert client.get(f"/appels/{ids.booked}").status_code == 200
    other = TestClient(_app(store, tmp_path))
    assert other.get("/demandes?suivi=won").url.query == b"suite=%2Fdemandes%3Fsuivi%3Dwon"
    assert _login(other, "https://evil.example/").url.path == "/"  # never off the dashboard


def test_the_call_page_says_what_happened_in_plain_french(seeded: Any, tmp_path: Path) -> None:
    store, ids = seeded
    client = TestClient(_app(store, tmp_path))
    _login(client)
    page = html.unescape(client.get(f"/appels/{ids.unreached}").text)
    assert 'id="outcome">Urgence NON jointe : rappeler tout de suite' in page
    assert page.index("Fuite d'eau au plafond") < page.index("Conversation") < page.index("Détails techniques")
    assert 'href="tel:+33611223344"' in page and 'href="sms:+33611223344"' in page
    assert page.index("transfer PJSIP/artisan") > page.index("<details")  # the technical words folded away
    put_through = html.unescape(client.get(f"/appels/{ids.transferred}").text)
    assert "Urgence transférée : l'artisan a répondu" in put_through
    assert "Message vocal laissé : à écouter" in html.unescape(client.get(f"/appels/{ids.message}").text)


def test_the_health_banner_is_on_every_page_in_french(seeded: Any, tmp_path: Path) -> None:
    store, _ids = seeded
    client = TestClient(_app(store, tmp_path, health=[NO_MODEL + " : chaque appel est pris en message vocal."]))
    assert NO_MODEL not in client.get("/connexion").text  # not before login
    _login(client)
    for path in ("/", "/appels", "/demandes", "/direct", "/reglages"):
        page = html.unescape(client.get(path).text)
        assert NO_MODEL in page and 'role="alert"' in page, path
        assert "1 SMS en échec depuis 24 h (dernière erreur : ARI sendMessage: 404)" in page, path
    healthy = TestClient(_app(store, tmp_path))
    _login(healthy)
    assert NO_MODEL not in healthy.get("/").text


def test_live_calls_link_to_their_page_and_say_their_stage(seeded: Any, tmp_path: Path) -> None:
    store, ids = seeded
    live = store.read(calls_in_progress)
    assert [(c["id"], c["stage"]) for c in live] == [(ids.in_progress, "message vocal")]
    client = TestClient(_app(store, tmp_path))
    _login(client)
    assert 'aria-live="polite"' in client.get("/direct").text  # (the link, in a browser: test_dashboard_phone)


def test_french_plurals_on_the_home_page(seeded: Any, tmp_path: Path) -> None:
    store, _ids = seeded
    client = TestClient(_app(store, tmp_path))
    _login(client)
    page = html.unescape(client.get("/").text)
    assert "1 transférée · 1 non jointe" in page and "transférées" not in page
