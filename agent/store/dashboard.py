"""What the artisan's dashboard reads and writes, as typed rows (issue 23): the to-do list, a lead as
a person reads it, its follow-up, and the SMS that are failing. The web room calls these; it writes
no SQL of its own for them."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

from agent.store.schema import DONE_FOLLOWUPS, CallStage, FollowUp, LeadStatus, Urgency

TODO_LIMIT: Final = 50
"""Cards of one kind on the to-do list at most (the oldest are still in Demandes)."""
SMS_FAILING_WINDOW_S: Final = 24 * 3600
"""An SMS that failed or is being retried within this is a service problem worth showing, s."""


class TodoKind(StrEnum):
    """Why a lead is on the to-do list, in the order the list shows them."""

    UNREACHED = "unreached"
    """A critical call whose transfer to the artisan failed: call back at once."""
    MESSAGE = "message"
    """A voice message to listen to."""
    CALL_BACK = "call_back"
    """A caller who left their details (a message, a call cut short, a transfer not answered)."""
    BOOKING = "booking"
    """A booking of today or tomorrow."""


@dataclass(frozen=True)
class LeadCard:
    """A lead as the artisan reads it."""

    call_id: int
    created_at: float
    name: str | None
    phone: str | None
    """The number to call back: the one given, else the one the call came from (E.164), or None."""
    problem: str | None
    """What the call is about, in the caller's words (the problem, else their message)."""
    urgency: Urgency
    status: LeadStatus
    followup: FollowUp
    recording: bool
    booking_start: float | None
    won_eur: int | None
    address: str | None = None


@dataclass(frozen=True)
class TodoItem:
    kind: TodoKind
    lead: LeadCard


_LEAD_SELECT: Final = ("SELECT l.call_id, l.created_at, l.name, l.address, l.phone, c.caller_id AS presented, "
                       "l.problem, l.message, l.urgency, l.status, l.followup, l.recording, l.booking_start, "
                       "l.won_eur FROM leads l JOIN calls c ON c.id = l.call_id")


def _card(r: sqlite3.Row) -> LeadCard:
    return LeadCard(call_id=r["call_id"], created_at=r["created_at"], name=r["name"],
                    phone=r["phone"] or r["presented"] or None, problem=r["problem"] or r["message"] or None,
                    urgency=Urgency(r["urgency"]), status=LeadStatus(r["status"]), followup=FollowUp(r["followup"]),
                    recording=r["recording"] is not None, booking_start=r["booking_start"], won_eur=r["won_eur"],
                    address=r["address"])


def _rows(conn: sqlite3.Connection, where: str, args: tuple[object, ...], order: str) -> list[LeadCard]:
    sql = f"{_LEAD_SELECT} WHERE {where} ORDER BY {order} LIMIT {TODO_LIMIT}"
    return [_card(r) for r in conn.execute(sql, args)]


def todo(conn: sqlite3.Connection, tz: ZoneInfo, now: float | None = None) -> list[TodoItem]:
    """What needs the artisan, first things first: critical calls not reached, voice messages,
    callers to call back (newest first), then the bookings of today and tomorrow (in time order).
    A lead leaves the list once its follow-up says it was dealt with (rappelé, devis, gagné, perdu);
    a call still in progress is not on it yet."""
    now = time.time() if now is None else now
    done = tuple(f.value for f in DONE_FOLLOWUPS)
    open_ = f"l.followup NOT IN ({', '.join('?' * len(done))}) AND c.ended_at IS NOT NULL"
    unreached = _rows(conn, f"{open_} AND l.urgency = ? AND l.status = ?",
                      (*done, Urgency.CRITICAL.value, LeadStatus.TRANSFER_FAILED.value), "l.created_at DESC")
    messages = _rows(conn, f"{open_} AND l.recording IS NOT NULL AND NOT (l.urgency = ? AND l.status = ?)",
                     (*done, Urgency.CRITICAL.value, LeadStatus.TRANSFER_FAILED.value), "l.created_at DESC")
    back = _rows(conn, f"{open_} AND l.recording IS NULL AND l.status IN (?, ?, ?) AND NOT (l.urgency = ? AND "
                       "l.status = ?) AND (l.name IS NOT NULL OR l.phone IS NOT NULL OR c.caller_id != '')",
                 (*done, LeadStatus.NEW.value, LeadStatus.MESSAGE.value, LeadStatus.TRANSFER_FAILED.value,
                  Urgency.CRITICAL.value, LeadStatus.TRANSFER_FAILED.value), "l.created_at DESC")
    today = datetime.fromtimestamp(now, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    until = (today + timedelta(days=2)).timestamp()
    bookings = _rows(conn, "l.status = ? AND l.booking_start >= ? AND l.booking_start < ?",
                     (LeadStatus.BOOKED.value, today.timestamp(), until), "l.booking_start")
    return ([TodoItem(TodoKind.UNREACHED, x) for x in unreached] + [TodoItem(TodoKind.MESSAGE, x) for x in messages]
            + [TodoItem(TodoKind.CALL_BACK, x) for x in back] + [TodoItem(TodoKind.BOOKING, x) for x in bookings])


def lead_card(conn: sqlite3.Connection, call_id: int) -> LeadCard | None:
    found = _rows(conn, "l.call_id = ?", (call_id,), "l.id")
    return found[0] if found else None


def leads(conn: sqlite3.Connection, followup: FollowUp | None = None, limit: int = 500) -> list[LeadCard]:
    """Leads (not the calls that were only information), newest first, of one follow-up status or all."""
    where, args = "l.status != ?", [LeadStatus.INFO.value]
    if followup is not None:
        where += " AND l.followup = ?"
        args.append(followup.value)
    sql = f"{_LEAD_SELECT} WHERE {where} ORDER BY l.created_at DESC LIMIT ?"
    return [_card(r) for r in conn.execute(sql, (*args, limit))]


def set_followup(conn: sqlite3.Connection, call_id: int, followup: FollowUp, won_eur: int | None = None) -> bool:
    """The artisan's follow-up of a lead (with what a won job brought in, if they say); False if
    there is no such lead."""
    amount = won_eur if followup is FollowUp.WON else None
    cur = conn.execute("UPDATE leads SET followup = ?, won_eur = ?, updated_at = ? WHERE call_id = ?",
                       (followup.value, amount, time.time(), call_id))
    return cur.rowcount > 0


@dataclass(frozen=True)
class Revenue:
    won_eur: int
    """What the won leads brought in, as the artisan entered it (a won lead without an amount: the basket)."""
    won: int
    won_with_amount: int
    open_leads: int
    """Leads neither won nor lost: counted at the basket times the conversion rate."""


def revenue(conn: sqlite3.Connection, since: float, basket_eur: int) -> Revenue:
    rows = conn.execute("SELECT followup, won_eur FROM leads WHERE created_at >= ? AND status != ?",
                        (since, LeadStatus.INFO.value)).fetchall()
    won = [r[1] for r in rows if r[0] == FollowUp.WON.value]
    open_leads = sum(1 for r in rows if r[0] not in (FollowUp.WON.value, FollowUp.LOST.value))
    return Revenue(won_eur=sum(a if a is not None else basket_eur for a in won), won=len(won),
                   won_with_amount=sum(1 for a in won if a is not None), open_leads=open_leads)


def set_stage(conn: sqlite3.Connection, call_id: int, stage: CallStage) -> None:
    conn.execute("UPDATE calls SET stage = ? WHERE id = ?", (stage.value, call_id))


@dataclass(frozen=True)
class SmsTrouble:
    failing: int
    """SMS failed or being retried within the last 24 h."""
    last_error: str


def sms_trouble(conn: sqlite3.Connection, now: float | None = None) -> SmsTrouble | None:
    now = time.time() if now is None else now
    rows = conn.execute("SELECT last_error FROM outbox WHERE created_at >= ? AND (state = 'failed' OR "
                        "(state IN ('pending', 'sending') AND attempts > 0)) ORDER BY id DESC",
                        (now - SMS_FAILING_WINDOW_S,)).fetchall()
    if not rows:
        return None
    return SmsTrouble(len(rows), rows[0][0])
