"""What the integrator runs by hand besides the service: check-config, the ARI user's ari.conf
section, reading the store (`standardiste leads`, `standardiste call`), and the log set-up every
command shares."""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final, TypeVar

from agent.files import write_private
from agent.yamlnode import read_yaml

T = TypeVar("T")

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
    from agent.dialogue.dialplan import load_dialplan

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
    if not secret_file.exists():
        write_private(secret_file, secrets.token_urlsafe(24) + "\n")
        print(f"new ARI password written to {secret_file}", file=sys.stderr)
    return ari_user_section(username, secret_file.read_text().strip())


def crypt_sha512(password: str) -> str:
    """A `$6$` crypt hash for ari.conf's password_format=crypt (openssl, no deprecated `crypt`)."""
    out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def ari_user_section(username: str, password: str) -> str:
    return (f"[{username}]\ntype = user\nread_only = no\npassword_format = crypt\n"
            f"password = {crypt_sha512(password)}\ndeny = 0.0.0.0/0\npermit = 127.0.0.1/32\n")


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
