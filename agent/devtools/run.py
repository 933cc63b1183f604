"""`make run`: a private Asterisk on loopback, the receptionist under its supervisor, the dashboard,
and the developer's softphone and artisan phone accounts printed."""

from __future__ import annotations

import logging
import secrets
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import TypeVar

from agent.admin import setup_logging
from agent.files import write_private

log = logging.getLogger("standardiste")
T = TypeVar("T")

DEFAULT_SIP_PORT = 5060


def dev_asterisk(run_dir: Path, sip_port: int = 0, http_port: int = 0):  # type: ignore[no-untyped-def]
    """A DevAsterisk for `run_dir`: a leftover one from a crashed run is stopped first (before any
    secret is rewritten under it), and a taken SIP port is replaced by a free one, said in one line."""
    from agent.devtools.asterisk import DevAsterisk, Ports, port_free

    run_dir = run_dir.resolve()
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Secrets and callers' data live here: one `git add -A` must never take them, whatever its name.
    ignore = run_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Standardiste's run directory: secrets and callers' data, never committed.\n*\n")
    probe = DevAsterisk(run_dir, Ports(1, 1, 0, 0))
    pid = probe.stop_leftover()
    if pid is not None:
        print(f"Stopped the Asterisk a previous run left in {run_dir} (pid {pid}).", flush=True)
    if not sip_port:
        sip_port = DEFAULT_SIP_PORT
        if not port_free(sip_port, socket.SOCK_DGRAM):
            sip_port = Ports.free().sip
            print(f"UDP port {DEFAULT_SIP_PORT} is taken: SIP on 127.0.0.1:{sip_port} instead.", flush=True)
    ast = DevAsterisk(run_dir, Ports.free(http=http_port, sip=sip_port))
    ast.check_ports_free()
    return ast


def stop_on_sigterm() -> None:
    """SIGTERM before the event loop takes it over (models loading) must still run the `finally`
    that stops our Asterisk: raise SystemExit instead of dying on the spot."""
    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def dev_web_password(path: Path) -> str:
    """The dev dashboard's password: made on the first run and shown once; later runs keep it."""
    from agent.web.auth import set_password

    if path.exists():
        return f"password set on the first run; change it: .venv/bin/standardiste set-password --file {path}"
    password = secrets.token_urlsafe(12)
    set_password(path, password)
    shown = path.with_name(path.name + ".first-run")  # 0600, never in a log or on the terminal
    write_private(shown, password + "\n")
    return f"first run: the password is in {shown} (read it, then delete that file)"


def run_dev(run_dir: Path, *, sip_port: int = 0, http_port: int = 0) -> int:
    from agent.config import load_config
    from agent.devtools.asterisk import ARTISAN_USER, SOFTPHONE_USER, AsteriskSetupError
    from agent.supervise import Supervisor

    stop_on_sigterm()
    try:
        ast = dev_asterisk(run_dir, sip_port, http_port)
    except AsteriskSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ast.render()
    config_path = ast.controller_config(ast.run_dir / "standardiste.yaml")
    config = load_config(config_path)
    setup_logging(config.log_level)
    web_password = dev_web_password(config.web.password_file)
    print(f"Starting Asterisk {ast.install.version} (run dir {ast.run_dir}) ...", flush=True)
    try:
        ast.start()
    except AsteriskSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        ast.stop()
        return 1
    try:
        missing = ast.missing_modules()
        if missing:
            print("warning: modules not running: " + ", ".join(missing), file=sys.stderr)
        print(f"""
Standardiste is answering on a local Asterisk. Call it from any softphone:
  SIP server : 127.0.0.1:{ast.ports.sip} (UDP)
  username   : {SOFTPHONE_USER}
  password   : in {ast.run_dir / 'softphone-password'}
  dial       : 100 (any number)       e.g. {ast.sip_uri}
The artisan's phone (transfers ring it): username {ARTISAN_USER}, password in {ast.run_dir / 'artisan-password'}
ARI: {ast.ari_url}/ari (user standardiste, password in {ast.run_dir / 'ari-password'})
Dashboard: http://{config.web.host}:{config.web.port}/  ({web_password})
Leads: .venv/bin/standardiste leads --store {config.paths.store}
Asterisk log: {ast.log_file}
Ctrl-C stops both. A controller that exits or hangs, and an Asterisk that dies, are started again.
""", flush=True)
        stopping = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
        with Supervisor(ast, config_path) as supervisor:
            supervisor.run(stopping.is_set)
    finally:
        ast.stop()
    return 0


