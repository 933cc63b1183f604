"""Which SMS a call causes, written to the outbox inside the transaction of that event.

- The artisan gets the lead card after every qualified lead: at once when it is urgent or critical
  (a critical call that could not be put through first gets "URGENT non joint"), in the day's digest
  when it is normal and the dialplan asks for one.
- The caller gets the confirmation (the booking's date and time, or "l'artisan vous rappelle"),
  only to a French mobile number, never when the number was withheld or the caller refused.

Each message has an idempotency key (call and kind): it is queued once whatever happens, and the
sender (agent/actions/delivery.py) delivers it with retries.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Final

from agent.actions.routes import MessageKind, Via
from agent.dialogue.dialplan import Dialplan
from agent.dialogue.slots import MONTH_NAMES, WEEKDAY_NAMES
from agent.dialogue.sms_texts import render
from agent.dialogue.text import format_phone, is_mobile
from agent.store import rows
from agent.store.outbox import enqueue, has_key
from agent.store.rows import LeadRow
from agent.store.schema import LeadStatus, Urgency

URGENCY_LABEL: Final = {Urgency.NORMAL: "normal", Urgency.URGENT: "URGENT", Urgency.CRITICAL: "CRITIQUE"}
CALLER_CONFIRMED: Final = (LeadStatus.BOOKED, LeadStatus.MESSAGE, LeadStatus.TRANSFER_FAILED)
"""Outcomes the caller gets an SMS about (put through: they spoke to the artisan; info: no lead)."""


def values(plan: Dialplan, lead: LeadRow, *, for_caller: bool) -> dict[str, str]:
    phone = lead.phone or lead.presented
    slot = ""
    if lead.booking_start:
        when = datetime.fromtimestamp(lead.booking_start, plan.timezone)
        slot = long_slot(when) if for_caller else short_slot(when)
    return {"business": plan.business, "name": lead.name or "", "address": lead.address or "",
            "phone": format_phone(phone) if phone else "", "problem": lead.problem or lead.message or "",
            "urgency": URGENCY_LABEL[lead.urgency], "slot": slot or "à convenir", "trade": plan.trade.label}


def long_slot(when: datetime) -> str:
    """For the caller, who reads it later: "mercredi 2 décembre à 14 h 30"."""
    hour = f"{when.hour} h" + (f" {when.minute:02d}" if when.minute else "")
    return f"{WEEKDAY_NAMES[when.weekday()]} {when.day} {MONTH_NAMES[when.month - 1]} à {hour}"


def short_slot(when: datetime) -> str:
    """For the artisan's card, where room is short: "mer 2/12 14h30"."""
    return f"{WEEKDAY_NAMES[when.weekday()][:3]} {when.day}/{when.month} {when.hour}h{when.minute:02d}"


def caller_number(lead: LeadRow) -> str | None:
    """Where the caller's confirmation may go: a mobile they gave or called from; never when the caller
    withheld their number or said no."""
    if not lead.presented or lead.sms_refused:
        return None
    for number in (lead.phone, lead.presented):
        if number and is_mobile(number):
            return number
    return None


def after_call(conn: sqlite3.Connection, plan: Dialplan, call_id: int, via: Via) -> list[MessageKind]:
    """Queue the SMS the call's outcome causes (in the caller's transaction); the kinds queued."""
    lead = rows.lead(conn, call_id)
    if lead is None or not lead.qualified:
        return []
    if lead.transfer_pending:
        return []  # still being put through (a blind transfer's first part): its end decides
    queued = []
    in_digest = plan.sms.digest is not None and lead.urgency == Urgency.NORMAL
    if via.artisan and not in_digest and enqueue(
            conn, key=f"{call_id}:artisan", call_id=call_id, kind=MessageKind.ARTISAN, route=via.route,
            recipient=via.artisan, body=render(plan.sms.artisan, values(plan, lead, for_caller=False))):
        queued.append(MessageKind.ARTISAN)
    to_caller = caller_number(lead) if plan.sms.to_caller and MessageKind.CALLER in via.kinds else None
    if to_caller and lead.status in CALLER_CONFIRMED:
        template = plan.sms.caller if lead.status == LeadStatus.BOOKED else plan.sms.caller_callback
        if enqueue(conn, key=f"{call_id}:caller", call_id=call_id, kind=MessageKind.CALLER, route=via.route,
                   recipient=to_caller, body=render(template, values(plan, lead, for_caller=True))):
            queued.append(MessageKind.CALLER)
    return queued


def unreached(conn: sqlite3.Connection, plan: Dialplan, call_id: int, via: Via) -> bool:
    """A critical call the artisan did not answer: "URGENT non joint", at once, before the card."""
    lead = rows.lead(conn, call_id)
    if lead is None or not via.artisan:
        return False
    return enqueue(conn, key=f"{call_id}:artisan_unreached", call_id=call_id, kind=MessageKind.ARTISAN_UNREACHED,
                   route=via.route, recipient=via.artisan,
                   body=render(plan.sms.artisan_unreached, values(plan, lead, for_caller=False)))


def digest(conn: sqlite3.Connection, plan: Dialplan, now: datetime, via: Via) -> bool:
    """Once a day at the dialplan's digest time: one SMS with the normal leads since the last one."""
    at = plan.sms.digest
    if at is None or not via.artisan:
        return False
    local = now.astimezone(plan.timezone)
    due = datetime.combine(local.date(), at, plan.timezone)
    if local < due:
        return False
    key = f"digest:{plan.file}:{local.date().isoformat()}"
    if has_key(conn, key):
        return False
    since = (due - timedelta(days=1)).timestamp()
    leads = [r for r in rows.leads_created(conn, plan.file, Urgency.NORMAL, since, due.timestamp()) if r.qualified]
    if not leads:
        return False
    lines = [render("{name} {phone} : {problem} (RDV {slot})", values(plan, r, for_caller=False)) for r in leads]
    body = f"{plan.business} : {len(leads)} demande(s) normale(s) - " + " ; ".join(lines)
    return enqueue(conn, key=key, call_id=None, kind=MessageKind.DIGEST, route=via.route, recipient=via.artisan,
                   body=body)


def event_uid(conn: sqlite3.Connection, plan: Dialplan, call_id: int) -> str:
    """The calendar event's UID for the booking a call made: stable, unique to the call."""
    call = rows.call(conn, call_id)
    return f"standardiste-{call_id}-{int(call.started_at if call else 0)}@{plan.trade.trade}"


def event(conn: sqlite3.Connection, plan: Dialplan, call_id: int, start: datetime, end: datetime,
          key: str | None = None) -> bool:
    """The booking's event for the artisan's calendar, with the lead card, queued under a stable UID
    (a moved booking writes the same UID again, under its own key)."""
    from agent.actions.calendar import CALENDAR_ROUTE, EventCard

    lead = rows.lead(conn, call_id)
    if lead is None:
        return False
    v = values(plan, lead, for_caller=False)
    uid = event_uid(conn, plan, call_id)
    card = EventCard(uid=uid, start=start, end=end,
                     summary=f"[{v['urgency']}] {v['name']} : {v['problem']}"[:120],
                     description="\n".join([f"Problème : {v['problem']}", f"Nom : {v['name']}",
                                            f"Adresse : {v['address']}", f"Téléphone : {v['phone']}",
                                            f"Urgence : {v['urgency']}", f"Pris par Standardiste (appel {call_id})"]),
                     location=v["address"])
    return enqueue(conn, key=key or f"{call_id}:event", call_id=call_id, kind=MessageKind.EVENT, route=CALENDAR_ROUTE,
                   recipient=uid, body=card.to_json())


def moved(conn: sqlite3.Connection, plan: Dialplan, booked_by: int, call_id: int, via: Via) -> list[MessageKind]:
    """A returning caller moved the booking `booked_by` made (its lead holds the new time): the
    artisan is told, the caller gets the new date."""
    lead = rows.lead(conn, booked_by)
    if lead is None or not via.enabled:
        return []
    queued = []
    if via.artisan and enqueue(conn, key=f"{call_id}:artisan_moved", call_id=call_id,
                               kind=MessageKind.ARTISAN_MOVED, route=via.route, recipient=via.artisan,
                               body=render(plan.sms.artisan_moved, values(plan, lead, for_caller=False))):
        queued.append(MessageKind.ARTISAN_MOVED)
    current = rows.call(conn, call_id)
    to_caller = caller_number(lead) if (plan.sms.to_caller and MessageKind.CALLER in via.kinds
                                        and current and current.caller_id) else None
    if to_caller and enqueue(conn, key=f"{call_id}:caller", call_id=call_id, kind=MessageKind.CALLER,
                             route=via.route, recipient=to_caller,
                             body=render(plan.sms.caller, values(plan, lead, for_caller=True))):
        queued.append(MessageKind.CALLER)
    return queued


def cancelled(conn: sqlite3.Connection, plan: Dialplan, booked_by: int, call_id: int, via: Via) -> list[MessageKind]:
    """A returning caller cancelled the booking `booked_by` made: the artisan is told."""
    lead = rows.lead(conn, booked_by)
    if lead is None or not via.artisan:
        return []
    ok = enqueue(conn, key=f"{call_id}:artisan_cancelled", call_id=call_id, kind=MessageKind.ARTISAN_CANCELLED,
                 route=via.route, recipient=via.artisan,
                 body=render(plan.sms.artisan_cancelled, values(plan, lead, for_caller=False)))
    return [MessageKind.ARTISAN_CANCELLED] if ok else []
