"""The README's dashboard screenshots (docs/): Accueil, the first call of its to-do list and Demandes,
in Debian's Chromium at a phone's size (360x740), from a store seeded as an artisan's would be after
a few days (tests/dashboard_seed.py), or from a given store (e.g. the development store that
`make demo` and `make run` fill).

    make screenshots
    .venv/bin/python scripts/screenshots.py [--store .run/standardiste.db] [--out docs]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.store.db import Store
from agent.web.app import WebSettings, create_app
from agent.web.auth import hash_password

PASSWORD = "capture d'écran"
PHONE = {"width": 360, "height": 740}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", help="a store to show (default: a seeded one, in a temporary folder)")
    ap.add_argument("--out", default="docs")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="standardiste-shots-"))
    messages = tmp / "messages"
    if args.store:
        store = Store(Path(args.store))  # migrates an older store, and writes nothing else
    else:
        from tests.dashboard_seed import seed

        store = Store(tmp / "store.db")
        seed(store, messages)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(WebSettings(store=store.path, password_hash=hash_password(PASSWORD), secret="s" * 32,
                                 messages_dir=messages), writer=store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True)
        page.goto(base + "/connexion")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Se connecter')")
        page.wait_for_url(base + "/")
        page.screenshot(path=str(out / "dashboard-home.png"), full_page=True)
        first = page.locator("article.todo h2 a").first
        if first.count():
            first.click()
            page.wait_for_load_state()
            page.screenshot(path=str(out / "dashboard-call.png"), full_page=True)
        page.goto(base + "/demandes")
        page.screenshot(path=str(out / "dashboard-leads.png"), full_page=True)
        browser.close()
    server.should_exit = True
    store.close()
    print(f"screenshots in {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
