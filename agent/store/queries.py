"""Reading the store (the CLI now, the dashboard next) and applying retention."""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

DAY_S: Final = 86400.0
LEAD_OUT_COLUMNS: Final = ("call_id", "created_at", "name", "address", "phone", "problem", "trade", "urgency",
                           "action", "status", "reason", "recording", "message", "booking_start", "booking_end",
                           "did", "business")


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).astimezone().isoformat(timespec="seconds") if ts else None


def leads(conn: sqlite3.Connection, since: float = 0.0) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT l.*, c.did, c.business FROM leads l JOIN calls c ON c.id = l.call_id "
        "WHERE l.created_at >= ? ORDER BY l.created_at", (since,)).fetchall()
    out = []
    for r in rows:
        item = {k: r[k] for k in LEAD_OUT_COLUMNS}
        for k in ("created_at", "booking_start", "booking_end"):
            item[k] = _iso(item[k])
        out.append(item)
    return out


def leads_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, ensure_ascii=False, indent=2)


def leads_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(LEAD_OUT_COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def call_detail(conn: sqlite3.Connection, call_id: int) -> dict[str, Any] | None:
    call = conn.execute("SELECT * FROM calls WHERE id = ?", (call_id,)).fetchone()
    if call is None:
        return None
    lead = conn.execute("SELECT * FROM leads WHERE call_id = ?", (call_id,)).fetchone()
    turns = conn.execute("SELECT at, who, text, interrupted FROM turns WHERE call_id = ? ORDER BY id",
                         (call_id,)).fetchall()
    actions = conn.execute("SELECT at, kind, target, result, reason FROM actions WHERE call_id = ? ORDER BY id",
                           (call_id,)).fetchall()
    trace = conn.execute("SELECT events FROM traces WHERE call_id = ?", (call_id,)).fetchone()
    sms = conn.execute("SELECT kind, route, state, attempts, created_at, sent_at, last_error, body FROM outbox "
                       "WHERE call_id = ? ORDER BY id", (call_id,)).fetchall()
    return {
        "call": {k: call[k] for k in call.keys()} | {"started_at": _iso(call["started_at"]),
                                                     "ended_at": _iso(call["ended_at"])},
        "lead": {k: lead[k] for k in lead.keys()} if lead else None,
        "turns": [{"at": _iso(t["at"]), "who": t["who"], "text": t["text"], "interrupted": bool(t["interrupted"])}
                  for t in turns],
        "actions": [{k: a[k] for k in a.keys()} | {"at": _iso(a["at"])} for a in actions],
        "trace": json.loads(trace["events"]) if trace else [],
        "sms": [{k: m[k] for k in m.keys()} | {"created_at": _iso(m["created_at"]), "sent_at": _iso(m["sent_at"])}
                for m in sms],
    }


def format_call(detail: dict[str, Any]) -> str:
    """A call as text for the terminal: the transcript, the lead, the actions and the trace."""
    c = detail["call"]
    lines = [f"call {c['id']}  {c['started_at']}  DID {c['did'] or '-'}  {c['business']}  outcome: {c['outcome']}"]
    lines.append("")
    for t in detail["turns"]:
        who = "appelant" if t["who"] == "caller" else "agent   "
        lines.append(f"{who}> {t['text']}{'  [interrompu]' if t['interrupted'] else ''}")
    lead = detail["lead"]
    if lead:
        lines.append("")
        lines.append("lead: " + ", ".join(f"{k}={lead[k]}" for k in ("name", "address", "phone", "problem", "urgency",
                                                                     "action", "status", "reason", "recording")
                                         if lead[k]))
    for a in detail["actions"]:
        lines.append(f"action: {a['kind']} {a['target']} -> {a['result']} {a['reason']}".rstrip())
    for m in detail.get("sms", []):
        lines.append(f"sms {m['kind']} via {m['route']}: {m['state']} after {m['attempts']} tries"
                     f"{' (' + m['last_error'] + ')' if m['last_error'] else ''}: {m['body']}")
    if detail["trace"]:
        lines.append("")
        lines.append("trace (ms from the start of the call):")
        lines += [f"  {e['ms']:>9.1f}  {e['event']}" for e in detail["trace"]]
    return "\n".join(lines)


@dataclass(frozen=True)
class Retention:
    dialplan: str
    recordings_days: int
    leads_days: int


def apply_retention(conn: sqlite3.Connection, rules: list[Retention], messages_dir: Path | None,
                    now: float | None = None) -> tuple[int, int]:
    """Delete recordings and calls older than each dialplan's limits; returns (recordings, calls)
    removed. Voice messages the dialplan recorded by itself (agent down) follow the strictest rule.
    Runs inside the writer's transaction (`Store.run`)."""
    now = time.time() if now is None else now
    recordings = calls = 0
    for rule in rules:
        cut = now - rule.recordings_days * DAY_S
        for row in conn.execute("SELECT l.id, l.recording FROM leads l JOIN calls c ON c.id = l.call_id "
                                "WHERE c.dialplan = ? AND l.recording IS NOT NULL AND c.started_at < ?",
                                (rule.dialplan, cut)).fetchall():
            Path(row["recording"]).unlink(missing_ok=True)
            conn.execute("UPDATE leads SET recording = NULL WHERE id = ?", (row["id"],))
            recordings += 1
        cut = now - rule.leads_days * DAY_S
        cur = conn.execute("DELETE FROM calls WHERE dialplan = ? AND coalesce(ended_at, started_at) < ?",
                           (rule.dialplan, cut))
        calls += cur.rowcount
    if messages_dir is not None and rules and messages_dir.is_dir():
        cut = now - min(r.recordings_days for r in rules) * DAY_S
        for wav in messages_dir.glob("message-*.wav"):
            if wav.stat().st_mtime < cut:
                wav.unlink(missing_ok=True)
                recordings += 1
        for card in messages_dir.glob("message-*.json"):  # who left it, when the store could not be written
            if card.stat().st_mtime < cut:
                card.unlink(missing_ok=True)
    return recordings, calls


def backup(store: Path, dest_dir: Path, keep: int = 14, now: float | None = None) -> Path:
    """A consistent copy of the store (SQLite's online backup API, fine while the service writes),
    named by date, mode 0600; only the newest `keep` copies are kept."""
    import os

    when = datetime.fromtimestamp(time.time() if now is None else now, UTC).strftime("%Y-%m-%d")
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"standardiste-{when}.db"
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    src = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    out = sqlite3.connect(tmp)
    try:
        src.backup(out)
    finally:
        out.close()
        src.close()
    os.replace(tmp, dest)
    for old in sorted(dest_dir.glob("standardiste-*.db"))[:-keep]:
        old.unlink()
    return dest
