"""Issue 23: the dashboard on a phone and on a laptop, in a real browser (Debian's Chromium driven by
Playwright) served by uvicorn from a real store seeded as an artisan's would be after a few days
(tests/dashboard_seed.py): no page scrolls sideways at 360 px, every control is at least 44x44 px on
the phone and labelled, the unreached emergency is the first card with a working `tel:` link,
"Traité" takes it off the list, and the health banner says when the French model is missing.
Screenshots of Accueil, a call and Demandes at phone size go to .run/artifacts/ (the README's are
`make screenshots`, scripts/screenshots.py, on the same seeded store)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.store.db import Store
from agent.web.app import WebSettings, create_app
from agent.web.auth import hash_password
from tests.conftest import REPO
from tests.dashboard_seed import seed

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "mot de passe du test"
PHONE = {"width": 360, "height": 740}
LAPTOP = {"width": 1366, "height": 900}
NO_MODEL = ("Aucun modèle de reconnaissance vocale français installé : chaque appel est pris en message vocal "
            "(l'installateur : make models).")
MIN_TAP_PX = 44

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is installed by make deps")

SMALL_CONTROLS = """() => {
  const seen = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0 &&
    getComputedStyle(el).visibility !== "hidden"; };
  const out = [];
  for (const el of document.querySelectorAll("a[href], button, select, input:not([type=hidden]), summary")) {
    if (!seen(el)) continue;
    const r = el.getBoundingClientRect();
    const name = (el.innerText || el.name || "").trim().slice(0, 30);
    if (r.width < MIN - 0.5 || r.height < MIN - 0.5)
      out.push(`${el.tagName} "${name}" ${Math.round(r.width)}x${Math.round(r.height)}`);
  }
  return out;
}""".replace("MIN", str(MIN_TAP_PX))
UNLABELLED = """() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")).map((el) => el.name)"""
SIDEWAYS = "() => document.documentElement.scrollWidth - window.innerWidth"


@pytest.fixture
def dashboard(tmp_path: Path) -> Any:
    import uvicorn

    store = Store(tmp_path / "s.db")
    ids = seed(store, tmp_path / "messages")
    app = create_app(WebSettings(store=store.path, password_hash=hash_password(PASSWORD), secret="k" * 32,
                                 messages_dir=tmp_path / "messages", health=lambda: [NO_MODEL],
                                 setup=(("Modèles installés", "aucun (make models) : " + "/opt/standardiste/" * 4),)),
                     writer=store)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}", ids
    server.should_exit = True
    thread.join(5)
    store.close()


def _login(page: Any, base: str) -> None:
    page.goto(base + "/")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Se connecter')")
    page.wait_for_url(base + "/")


def test_every_page_fits_a_phone_and_a_laptop_with_big_labelled_controls(dashboard: Any) -> None:
    from playwright.sync_api import sync_playwright

    base, ids = dashboard
    pages = ["/", "/appels", f"/appels/{ids.unreached}", f"/appels/{ids.message}", "/demandes", "/direct",
             "/reglages"]
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for size, name in ((PHONE, "phone"), (LAPTOP, "laptop")):
            page = browser.new_page(viewport=size)
            page.goto(base + "/connexion")
            problems += [f"{name} /connexion: {x}" for x in page.evaluate(UNLABELLED)]
            _login(page, base)
            for path in pages:
                page.goto(base + path)
                if (over := page.evaluate(SIDEWAYS)) > 0:
                    problems.append(f"{name} {path}: {over} px of sideways scroll")
                problems += [f"{name} {path}: unlabelled {x}" for x in page.evaluate(UNLABELLED)]
                if size is PHONE:
                    problems += [f"{name} {path}: small {x}" for x in page.evaluate(SMALL_CONTROLS)]
                assert NO_MODEL in page.inner_text("main"), f"{name} {path}: no health banner"
            page.close()
        browser.close()
    assert not problems, "\n".join(problems)


def test_the_unreached_emergency_is_first_and_done_takes_it_off_the_list(dashboard: Any) -> None:
    from playwright.sync_api import sync_playwright

    base, ids = dashboard
    shots = REPO / ".run" / "artifacts"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
        page = context.new_page()
        _login(page, base)
        first = page.locator("article.todo").first
        assert first.get_attribute("id") == f"todo-{ids.unreached}"
        assert "k-unreached" in (first.get_attribute("class") or "")
        call = first.locator("a[href^='tel:']")
        assert call.get_attribute("href") == "tel:+33611223344" and "06 11 22 33 44" in call.inner_text()
        page.screenshot(path=str(shots / "dashboard-home.png"), full_page=True)
        # The link works: tapping it hands a tel: navigation to the phone (here, the request made; in a
        # page of its own, closed after, as the dialer would take over).
        tap = page.context.new_page()
        tap.goto(base + "/")
        tap.route("tel:*", lambda route: route.abort())
        with tap.expect_request(lambda r: r.url.startswith("tel:")) as asked:
            tap.locator("article.todo").first.locator("a[href^='tel:']").tap()
        assert asked.value.url == "tel:+33611223344"
        tap.close()
        with page.expect_navigation():
            page.locator(f"#todo-{ids.unreached} button:has-text('Traité')").click()
        assert page.locator(f"#todo-{ids.unreached}").count() == 0
        assert page.locator("article.todo").first.get_attribute("id") == f"todo-{ids.message}"
        page.goto(f"{base}/appels/{ids.unreached}")
        page.screenshot(path=str(shots / "dashboard-call.png"), full_page=True)
        page.goto(base + "/demandes")
        page.screenshot(path=str(shots / "dashboard-leads.png"), full_page=True)
        # A lead marked "gagné" asks for its amount, which counts in the revenue.
        card = page.locator("tr", has_text="Jean Martin")
        assert not card.locator("input[name=montant]").is_visible()
        card.locator("select[name=followup]").select_option("won")
        card.locator("input[name=montant]").fill("1250")
        with page.expect_navigation():
            card.locator("button:has-text('Enregistrer')").click()
        page.goto(base + "/")
        assert "1 250 € gagnés (1 montant saisi sur 1)" in page.inner_text("main")
        # En direct: the call in progress, its stage as its session set it, a link to its page.
        page.goto(base + "/direct")
        live = page.locator(f"#live a[href='/appels/{ids.in_progress}']")
        live.wait_for(timeout=5000)
        assert "message vocal" in page.inner_text("#live")
        browser.close()
