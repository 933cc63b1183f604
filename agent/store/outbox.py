"""The SMS outbox: rows written in the caller's own transaction, then claimed and settled by the
sender (agent/actions/delivery.py). Functions of a connection, so a write can enqueue inside the
transaction of the event that causes it (store.run / Store.end_call)."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from agent.store.schema import SmsState


@dataclass(frozen=True)
class Sms:
    id: int
    key: str
    call_id: int | None
    kind: str
    route: str
    recipient: str
    body: str
    attempts: int
    """Tries so far, this one included."""


def enqueue(conn: sqlite3.Connection, *, key: str, call_id: int | None, kind: str, route: str, recipient: str,
            body: str, at: float | None = None) -> bool:
    """Queue one SMS; False when a message with this key was already queued (never twice)."""
    now = time.time()
    cur = conn.execute(
        "INSERT OR IGNORE INTO outbox (key, call_id, kind, route, recipient, body, state, next_at, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (key, call_id, kind, route, recipient, body, SmsState.PENDING.value, now if at is None else at, now))
    return cur.rowcount == 1


def has_key(conn: sqlite3.Connection, key: str) -> bool:
    """A message with this idempotency key is in the outbox (whatever its state)."""
    return conn.execute("SELECT 1 FROM outbox WHERE key = ?", (key,)).fetchone() is not None


def claim_due(conn: sqlite3.Connection, now: float, limit: int = 10) -> list[Sms]:
    """The due messages, marked `sending` in this transaction (a restart finds them again)."""
    rows = conn.execute(
        "SELECT id, key, call_id, kind, route, recipient, body, attempts FROM outbox "
        "WHERE state = ? AND next_at <= ? ORDER BY next_at, id LIMIT ?",
        (SmsState.PENDING.value, now, limit)).fetchall()
    out = [Sms(r["id"], r["key"], r["call_id"], r["kind"], r["route"], r["recipient"], r["body"], r["attempts"] + 1)
           for r in rows]
    for sms in out:
        conn.execute("UPDATE outbox SET state = ?, attempts = attempts + 1 WHERE id = ?",
                     (SmsState.SENDING.value, sms.id))
    return out


def recover(conn: sqlite3.Connection) -> int:
    """At start-up: messages a previous process was sending when it stopped go back to pending
    (tried again under the same key; the routes make a second delivery harmless where they can)."""
    return conn.execute("UPDATE outbox SET state = ? WHERE state = ?",
                        (SmsState.PENDING.value, SmsState.SENDING.value)).rowcount


def mark_sent(conn: sqlite3.Connection, sms_id: int) -> None:
    conn.execute("UPDATE outbox SET state = ?, sent_at = ?, last_error = '' WHERE id = ?",
                 (SmsState.SENT.value, time.time(), sms_id))


def mark_retry(conn: sqlite3.Connection, sms_id: int, next_at: float, error: str) -> None:
    conn.execute("UPDATE outbox SET state = ?, next_at = ?, last_error = ? WHERE id = ?",
                 (SmsState.PENDING.value, next_at, error[:200], sms_id))


def mark_failed(conn: sqlite3.Connection, sms_id: int, error: str) -> None:
    conn.execute("UPDATE outbox SET state = ?, last_error = ? WHERE id = ?",
                 (SmsState.FAILED.value, error[:200], sms_id))


def messages(conn: sqlite3.Connection, call_id: int | None = None) -> list[dict[str, object]]:
    """The outbox as plain rows (for a call, or all), oldest first."""
    query = "SELECT * FROM outbox" + (" WHERE call_id = ?" if call_id is not None else "") + " ORDER BY id"
    return [dict(r) for r in conn.execute(query, () if call_id is None else (call_id,))]


def depth(conn: sqlite3.Connection) -> int:
    """Messages not yet sent nor given up."""
    return int(conn.execute("SELECT count(*) FROM outbox WHERE state IN (?, ?)",
                            (SmsState.PENDING.value, SmsState.SENDING.value)).fetchone()[0])
