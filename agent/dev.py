"""What the integrator and the developer run by hand: `make run` (a private Asterisk and the
receptionist), check-config, the ARI user, and reading the store."""

from __future__ import annotations

import json
import logging
import secrets
import signal
import socket
import sqlite3
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final, TypeVar

from agent.files import write_private
from agent.yamlnode import read_yaml

log = logging.getLogger("standardiste")
T = TypeVar("T")

DEFAULT_SIP_PORT = 5060


QUIET_LOGGERS: Final = ("httpx", "httpcore", "piper", "websockets", "urllib3", "caldav", "radicale")


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Libraries that log what they carry at INFO or DEBUG: piper the text it speaks (a caller's
    # address and number read back), websockets every ARI event (caller IDs), httpx/httpcore every
    # request. Their warnings still show; the words never do, whatever `log_level` says.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def check_config(file: str) -> str:
    """Service configs and dialplans alike (a dialplan has a `business:` section)."""
    from agent.config import load_config
    from agent.dialogue.schema import load_dialplan

    data = read_yaml(file)
    if isinstance(data, dict) and "business" in data:
        plan = load_dialplan(file)
        return "\n".join([f"{file}: OK (dialplan for {plan.business}, {plan.trade.label})",
                          *(f"warning: {w}" for w in plan.sms.warnings)])
    config = load_config(file)
    plans = ", ".join(p.business for p in config.dialplans.all())
    warnings = [f"warning: {w}" for p in config.dialplans.all() for w in p.sms.warnings]
    if config.sms.route == "none":
        warnings.append(f"warning: {file}: sms.route: none: no SMS is sent to the artisan or the callers")
    calendar = f"CalDAV calendar {config.calendar.calendar!r}" if config.calendar else "local agenda"
    return "\n".join([f"{file}: OK (answers for {plans}, SMS route: {config.sms.route}, {calendar})", *warnings])


def write_ari_user(secret_file: Path, username: str) -> str:
    from agent.telephony.devasterisk import ari_user_section

    if not secret_file.exists():
        write_private(secret_file, secrets.token_urlsafe(24) + "\n")
        print(f"new ARI password written to {secret_file}", file=sys.stderr)
    return ari_user_section(username, secret_file.read_text().strip())


def dev_asterisk(run_dir: Path, sip_port: int = 0, http_port: int = 0):  # type: ignore[no-untyped-def]
    """A DevAsterisk for `run_dir`: a leftover one from a crashed run is stopped first (before any
    secret is rewritten under it), and a taken SIP port is replaced by a free one, said in one line."""
    from agent.telephony.devasterisk import DevAsterisk, Ports, port_free

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
    from agent.supervise import Supervisor
    from agent.telephony.devasterisk import ARTISAN_USER, SOFTPHONE_USER, AsteriskSetupError

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


def _since(value: str | None) -> float | None:
    if not value:
        return 0.0
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _read_store(store: Path, fn: Callable[[sqlite3.Connection], T]) -> T | None:
    """`fn` on a read-only connection to the store; None (said on stderr) when there is none."""
    from agent.store.db import StoreError, connect

    try:
        conn = connect(store, readonly=True)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    try:
        return fn(conn)
    finally:
        conn.close()


def print_leads(store: Path, since: str | None, fmt: str) -> int:
    from agent.store.queries import leads, leads_csv, leads_json

    start = _since(since)
    if start is None:
        print(f"error: --since: expected a date YYYY-MM-DD, got {since!r}", file=sys.stderr)
        return 2
    rows = _read_store(store, lambda conn: leads(conn, start))
    if rows is None:
        return 1
    if fmt == "json":
        print(leads_json(rows))
    elif fmt == "csv":
        sys.stdout.write(leads_csv(rows))
    else:
        for r in rows:
            print(f"{r['created_at']}  [{r['urgency']}] {r['status']:15} {r['name'] or '-'} | {r['address'] or '-'} | "
                  f"{r['phone'] or '-'} | {r['problem'] or '-'}  (call {r['call_id']})")
    return 0


def print_call(store: Path, call_id: int, *, as_json: bool) -> int:
    from agent.store.queries import call_detail, format_call

    detail = _read_store(store, lambda conn: call_detail(conn, call_id))
    if detail is None:
        if store.exists():  # otherwise _read_store said why
            print(f"error: no call {call_id} in {store}", file=sys.stderr)
        return 1
    print(json.dumps(detail, ensure_ascii=False, indent=2) if as_json else format_call(detail))
    return 0
