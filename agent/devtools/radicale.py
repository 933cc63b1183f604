"""A real CalDAV server for the tests and `make demo`: Radicale (a dev dependency) on a free
loopback port, with a user and a password, and the artisan's calendar made in it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

USER = "artisan"
PASSWORD = "radicale-test-password"
CALENDAR = "Travaux"


class Radicale:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)
        (root / "users").write_text(f"{USER}:{PASSWORD}\n")
        (root / "config").write_text(
            f"[server]\nhosts = 127.0.0.1:{self.port}\n"
            f"[auth]\ntype = htpasswd\nhtpasswd_filename = {root / 'users'}\nhtpasswd_encryption = plain\n"
            f"[storage]\nfilesystem_folder = {root / 'collections'}\n[logging]\nlevel = warning\n")
        (root / "password").write_text(PASSWORD + "\n")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> Radicale:
        log = open(self.root / "radicale.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "radicale", "--config", str(self.root / "config")],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        end = time.monotonic() + 15
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError((self.root / "radicale.log").read_text()) from None
                time.sleep(0.05)
        raise RuntimeError("Radicale did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def calendar(self) -> Any:
        """The artisan's calendar (made on first use), through the caldav library."""
        import caldav

        dav: Any = caldav.DAVClient
        client = dav(self.url, username=USER, password=PASSWORD, require_tls=False, enable_rfc6764=False)
        principal = client.principal()
        found = [c for c in principal.calendars() if c.get_display_name() == CALENDAR]
        return found[0] if found else principal.make_calendar(name=CALENDAR)

    def config_lines(self) -> list[str]:
        return ["calendar:", "  kind: caldav", "  caldav:", f"    url: {self.url}", f"    username: {USER}",
                f"    password_file: {self.root / 'password'}", f"    calendar: {CALENDAR}"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
