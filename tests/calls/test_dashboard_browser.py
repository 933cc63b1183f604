"""Issue 11: the dashboard in a real browser (Debian's Chromium driven by Playwright) after a real
call (a real Asterisk, a pjsua2 phone leaving a voice message): it logs in, sees the figures of the
store, opens the call and its recording, changes the lead's follow-up, exports the CSV. Screenshots
of the home page and of the call are saved in .run/artifacts/ (the README's come from there)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from agent.devtools.asterisk import DevAsterisk
from agent.devtools.phones import converse
from agent.web.auth import set_password
from tests.conftest import REPO
from tests.harness import InProcessAgent
from tests.live import CALLER_NUMBER, dialplan_file, store_rows, utterance_wavs, wait_lead

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / ".run" / "artifacts"
PASSWORD = "mot de passe du test"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is installed by make deps")
def test_the_dashboard_in_a_real_browser_after_a_real_call(asterisk: DevAsterisk, phones: Any, softphone: Any,
                                                          tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    set_password(asterisk.run_dir / "web-password", PASSWORD)
    config = asterisk.controller_config(tmp_path / "standardiste.yaml", dialplan=str(dialplan_file(tmp_path)),
                                        store=tmp_path / "store.db")
    agent = InProcessAgent(asterisk, config=config).start()  # no French model: the call is a voice message
    try:
        call = phones.call(softphone, asterisk.sip_uri, tmp_path / "caller.wav", caller_number=CALLER_NUMBER)
        assert phones.wait_until(lambda: call.confirmed, 10)
        converse(phones, call, utterance_wavs(tmp_path, ["Bonjour, j'ai une fuite sous l'évier, rappelez-moi."]))
        assert phones.wait_until(lambda: call.ended, 30)
        lead = wait_lead(tmp_path / "store.db", lambda r: r["recording"] is not None, phones=phones)
        assert phones.wait_until(lambda: bool(store_rows(tmp_path / "store.db",
                                                         "SELECT 1 FROM calls WHERE ended_at IS NOT NULL")), 5)
        base = f"http://127.0.0.1:{asterisk.ports.web}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 412, "height": 915}, accept_downloads=True)  # a phone
            page.goto(base + "/")
            assert page.url.endswith("/connexion?suite=%2F")
            page.fill("input[name=password]", PASSWORD)
            page.click("button:has-text('Se connecter')")
            page.wait_for_url(base + "/")
            calls = store_rows(tmp_path / "store.db", "SELECT count(*) AS n FROM calls")[0]["n"]
            assert page.inner_text("#calls-1") == str(calls) == "1"
            assert page.inner_text("#leads") == "1"
            page.screenshot(path=str(ARTIFACTS / "dashboard-home.png"), full_page=True)
            page.goto(base + "/appels")
            assert "06 •• •• •• 78" in page.content() and "+33612345678" not in page.content()
            page.click("table a")
            # Polled from here: wait_for_function evaluates its string in the page, which the
            # dashboard's Content-Security-Policy (no 'unsafe-eval') rightly refuses.
            ready = "document.querySelector('audio') ? document.querySelector('audio').readyState : 0"
            end = time.monotonic() + 10
            while page.evaluate(ready) < 1 and time.monotonic() < end:
                page.wait_for_timeout(100)
            duration = page.evaluate("document.querySelector('audio').duration")
            assert duration > 0.5, "the recording did not load in the browser"
            assert CALLER_NUMBER in page.inner_text("#phone")  # whole on the lead card
            page.screenshot(path=str(ARTIFACTS / "dashboard-call.png"), full_page=True)
            page.goto(base + "/demandes")
            page.select_option("select[name=followup]", "called_back")
            with page.expect_navigation():
                page.click("td button:has-text('Enregistrer')")
            assert page.url == base + "/demandes"
            with page.expect_download() as download:
                page.click("text=Exporter (CSV)")
            csv_text = Path(download.value.path()).read_bytes().decode("utf-8-sig")
            browser.close()
        conn = sqlite3.connect(tmp_path / "store.db")
        assert conn.execute("SELECT followup FROM leads WHERE call_id = ?", (lead["call_id"],)).fetchone()[0] \
            == "called_back"
        conn.close()
        assert csv_text.splitlines()[0].startswith("appel;date;nom;téléphone") and ";rappelé" in csv_text
    finally:
        agent.stop()
