"""The end of a qualified call: an appointment offered from the free slots, or a callback."""

from __future__ import annotations

from agent.dialogue.context import Context
from agent.dialogue.heard import Heard
from agent.dialogue.phrases import (
    AGENDA_UNAVAILABLE,
    BOOKED,
    CALL_BACK,
    CALL_BACK_FOR_BOOKING,
    CALL_BACK_WHEN,
    CRITICAL_CALL_BACK,
    GOODBYE,
    NO_SLOT_SOON,
    NO_SLOT_THEN,
    NOT_UNDERSTOOD,
    OFFER_MANY,
    OFFER_ONE,
    SLOT_JUST_TAKEN,
    SMS_CONFIRMATION,
    URGENT_LEAD,
)
from agent.dialogue.slots import free_slots, say_slot
from agent.dialogue.state import Action, Ask, Severity


def close(conv: Context, urgency: Severity) -> str:
    """Every field is known: offer the free slots, or say the artisan will call back. A critical
    call that could not be put through is never booked: the artisan calls back at once."""
    if urgency is Severity.CRITICAL:
        conv.outcome.action = Action.MESSAGE
        return f"{CRITICAL_CALL_BACK} {GOODBYE}"
    if (not conv.open and conv.plan.after_hours_action is Action.MESSAGE) or not conv.plan.booking.enabled:
        conv.outcome.action = Action.MESSAGE
        return f"{CALL_BACK.format(when=CALL_BACK_WHEN[conv.open])} {GOODBYE}"
    urgent = urgency is not Severity.NORMAL
    busy = conv.busy_slots()
    if busy is None:  # the artisan's calendar could not be read in time: no slot is guessed
        conv.outcome.action = Action.MESSAGE
        if conv.on_field is not None:
            conv.on_field("reason", "agenda unavailable")
        return f"{AGENDA_UNAVAILABLE} {GOODBYE}"
    conv.offered = free_slots(conv.plan, conv.now, busy, urgent=urgent, pref=conv.pref_when)
    if not conv.offered and conv.pref_when is not None:
        conv.offered = free_slots(conv.plan, conv.now, busy, urgent=urgent, pref=None)
    if not conv.offered:
        conv.outcome.action = Action.MESSAGE
        return f"{NO_SLOT_SOON} {GOODBYE}"
    conv.hold_offered()
    conv.ask(Ask.SLOT)
    lead = URGENT_LEAD if urgent else ""
    return lead + offer_text(conv)



def offer_text(conv: Context) -> str:
    options = [say_slot(s, conv.now) for s in conv.offered]
    if len(options) == 1:
        return OFFER_ONE.format(slot=options[0])
    return OFFER_MANY.format(slots=", ou ".join(options))


async def slot_answer(conv: Context, h: Heard) -> str:
    """The caller's choice among the slots offered (or another day they would like)."""
    assert conv.pending is not None
    chosen = h.slot
    if chosen is not None and conv.agenda is not None and not await conv.agenda.still_free(chosen):
        # Taken in the artisan's calendar since it was offered: the next free ones.
        conv.offered = [s for s in free_slots(conv.plan, conv.now, [*(conv.busy_slots() or ()), chosen],
                                              urgent=conv.urgency is not Severity.NORMAL, pref=None)]
        if not conv.offered:
            conv.outcome.action = Action.MESSAGE
            return f"{SLOT_JUST_TAKEN} {CALL_BACK_FOR_BOOKING} {GOODBYE}"
        conv.hold_offered()
        return f"{SLOT_JUST_TAKEN} {offer_text(conv)}"
    if chosen is not None:
        conv.outcome.action = Action.BOOKING
        conv.outcome.booking = chosen
        conv.pending = None
        sms = f" {SMS_CONFIRMATION}" if conv.lead.phone else ""
        return f"{BOOKED.format(slot=say_slot(chosen, conv.now))}{sms} {GOODBYE}"
    conv.pending.tries += 1
    if h.when is not None or h.yes is False:
        if conv.pending.tries > conv.plan.max_retries:
            conv.outcome.action = Action.MESSAGE
            return f"{CALL_BACK_FOR_BOOKING} {GOODBYE}"
        if h.when is not None:
            conv.pref_when = h.when
        slots = free_slots(conv.plan, conv.now, conv.busy_slots() or (), urgent=conv.urgency is not Severity.NORMAL,
                           pref=h.when)
        if slots:
            conv.offered = slots
            conv.hold_offered()
            return offer_text(conv)
        return NO_SLOT_THEN
    if conv.pending.tries > conv.plan.max_retries:
        conv.outcome.action = Action.MESSAGE
        return f"{CALL_BACK_FOR_BOOKING} {GOODBYE}"
    return f"{NOT_UNDERSTOOD} {offer_text(conv)}"
