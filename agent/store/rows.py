"""A call and its lead as typed rows: what the rest of the code reads of them, with the enums it
uses, and the rules about a row's state in one place. The functions here run inside a store
transaction (`Store.run`, `Store.submit`, `Store.read`): they take the connection."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Final

from agent.store.schema import FollowUp, LeadStatus, Urgency, transfer_pending


@dataclass(frozen=True)
class CallRow:
    id: int
    channel_id: str
    started_at: float
    ended_at: float | None
    caller_id: str
    """The number the call came from (E.164), "" when withheld."""
    dialplan: str
    """The dialplan file that answered."""
    outcome: str | None


@dataclass(frozen=True)
class LeadRow:
    """A lead with the number its call came from (`presented`)."""

    call_id: int
    created_at: float
    presented: str
    name: str | None
    address: str | None
    phone: str | None
    problem: str | None
    message: str | None
    recording: str | None
    urgency: Urgency
    action: str | None
    status: LeadStatus
    followup: FollowUp
    booking_start: float | None
    sms_refused: bool

    @property
    def transfer_pending(self) -> bool:
        """Being put through to the artisan, with no result yet (see schema.transfer_pending)."""
        return transfer_pending(self.action, self.status)

    @property
    def qualified(self) -> bool:
        """Something the artisan can act on: not an information call, and a problem or a message heard."""
        return self.status != LeadStatus.INFO and bool(self.problem or self.message or self.recording)


_CALL: Final = "SELECT id, channel_id, started_at, ended_at, caller_id, dialplan, outcome FROM calls"
_LEAD: Final = ("SELECT l.call_id, l.created_at, c.caller_id AS presented, l.name, l.address, l.phone, l.problem, "
                "l.message, l.recording, l.urgency, l.action, l.status, l.followup, l.booking_start, l.sms_refused "
                "FROM leads l JOIN calls c ON c.id = l.call_id")


def _call(r: sqlite3.Row | tuple[object, ...]) -> CallRow:
    return CallRow(*r)


def _lead(r: sqlite3.Row) -> LeadRow:
    return LeadRow(call_id=r["call_id"], created_at=r["created_at"], presented=r["presented"] or "", name=r["name"],
                   address=r["address"], phone=r["phone"], problem=r["problem"], message=r["message"],
                   recording=r["recording"], urgency=Urgency(r["urgency"]), action=r["action"],
                   status=LeadStatus(r["status"]), followup=FollowUp(r["followup"]),
                   booking_start=r["booking_start"], sms_refused=bool(r["sms_refused"]))


def _rows(conn: sqlite3.Connection, sql: str, args: tuple[object, ...]) -> list[sqlite3.Row]:
    rows: list[sqlite3.Row] = conn.execute(sql, args).fetchall()  # the store's connections give sqlite3.Row
    return rows


def call(conn: sqlite3.Connection, call_id: int) -> CallRow | None:
    row = conn.execute(f"{_CALL} WHERE id = ?", (call_id,)).fetchone()
    return _call(row) if row is not None else None


def lead(conn: sqlite3.Connection, call_id: int) -> LeadRow | None:
    rows = _rows(conn, f"{_LEAD} WHERE l.call_id = ?", (call_id,))
    return _lead(rows[0]) if rows else None


def leads_created(conn: sqlite3.Connection, dialplan: str, urgency: Urgency, since: float,
                  until: float) -> list[LeadRow]:
    """A dialplan's leads of one urgency created in [since, until), oldest first (the digest's)."""
    return [_lead(r) for r in _rows(conn, f"{_LEAD} WHERE c.dialplan = ? AND l.urgency = ? AND l.created_at >= ? "
                                          "AND l.created_at < ? ORDER BY l.id", (dialplan, urgency, since, until))]


def recent_leads(conn: sqlite3.Connection, limit: int = 500) -> list[LeadRow]:
    """The newest leads but information calls (the dashboard's Demandes, its CSV)."""
    return [_lead(r) for r in _rows(conn, f"{_LEAD} WHERE l.status != ? ORDER BY l.created_at DESC LIMIT ?",
                                    (LeadStatus.INFO, limit))]


def open_calls(conn: sqlite3.Connection) -> list[tuple[CallRow, LeadRow | None]]:
    """Calls with no end (a run stopped mid-call left them), each with its lead if it has one."""
    calls = [_call(r) for r in conn.execute(f"{_CALL} WHERE ended_at IS NULL ORDER BY id")]
    return [(c, lead(conn, c.id)) for c in calls]


def close_call(conn: sqlite3.Connection, call_id: int, outcome: str, at: float | None = None) -> None:
    conn.execute("UPDATE calls SET ended_at = ?, outcome = ? WHERE id = ?", (at or time.time(), outcome, call_id))


def set_status(conn: sqlite3.Connection, call_id: int, status: LeadStatus, reason: str,
               at: float | None = None) -> None:
    conn.execute("UPDATE leads SET status = ?, reason = ?, updated_at = ? WHERE call_id = ?",
                 (status, reason, at or time.time(), call_id))


def attach_recording(conn: sqlite3.Connection, channel_id: str, path: str, at: float | None = None) -> int:
    """A voice message recorded by the dialplan, to the lead of the call on that channel if it has
    none; how many leads took it (0 or 1)."""
    return conn.execute("UPDATE leads SET recording = ?, updated_at = ? WHERE recording IS NULL AND call_id IN "
                        "(SELECT id FROM calls WHERE channel_id = ?)", (path, at or time.time(), channel_id)).rowcount


def record_action(conn: sqlite3.Connection, call_id: int, kind: str, result: str, reason: str = "",
                  target: str = "", at: float | None = None) -> None:
    """One line of what was done for a call (a transfer step, an SMS queued, an engine failure)."""
    conn.execute("INSERT INTO actions (call_id, at, kind, target, result, reason) VALUES (?, ?, ?, ?, ?, ?)",
                 (call_id, at or time.time(), kind, target, result, reason))


def traces(conn: sqlite3.Connection, since: float = 0.0) -> list[tuple[CallRow, list[dict[str, Any]]]]:
    """Each call's timing marks ({event, ms}) with its call, oldest first."""
    rows = conn.execute("SELECT c.id, c.channel_id, c.started_at, c.ended_at, c.caller_id, c.dialplan, c.outcome, "
                        "t.events FROM calls c JOIN traces t ON t.call_id = c.id WHERE c.started_at >= ? "
                        "ORDER BY c.id", (since,)).fetchall()
    return [(_call(tuple(r)[:7]), json.loads(r[7])) for r in rows]
