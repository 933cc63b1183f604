"""The README's dashboard screenshots: the dashboard on the development store (.run/standardiste.db,
filled by `make demo` and `make run`), in Debian's Chromium at a phone's size.

    .venv/bin/python scripts/screenshots.py [--store .run/standardiste.db] [--out docs]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from agent.store.db import Store
from agent.web.app import WebSettings, create_app
from agent.web.auth import hash_password

PASSWORD = "capture d'écran"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default=".run/standardiste.db")
    ap.add_argument("--out", default="docs")
    args = ap.parse_args()
    store = Store(Path(args.store))  # migrates an older store, and writes nothing else
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(WebSettings(store=store.path, password_hash=hash_password(PASSWORD), secret="s" * 32,
                                 messages_dir=Path(tempfile.gettempdir())), writer=store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 412, "height": 915})
        page.goto(base + "/connexion")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Se connecter')")
        page.wait_for_url(base + "/")
        page.screenshot(path=str(out / "dashboard-home.png"), full_page=True)
        page.goto(base + "/appels")
        page.screenshot(path=str(out / "dashboard-calls.png"), full_page=True)
        page.click("table a")
        page.screenshot(path=str(out / "dashboard-call.png"), full_page=True)
        browser.close()
    server.should_exit = True
    store.close()
    print(f"screenshots in {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
