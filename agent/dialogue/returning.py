"""A returning caller: a number with an upcoming booking is greeted with it, and can move it,
cancel it, or call about something else.

    Vous avez rendez-vous jeudi 3 décembre à 8 h. Voulez-vous le déplacer ou l'annuler ?

Moving offers the next free slots (the caller's own booking no longer counts as busy) and ends
in a booking that replaces the old one (`Outcome.moves`); cancelling ends with `Action.CANCEL`.
The session carries both out in the store, the calendar and the SMS.
"""

from __future__ import annotations

from agent.dialogue.closing import close
from agent.dialogue.context import Context
from agent.dialogue.heard import Heard
from agent.dialogue.lead import Upcoming
from agent.dialogue.phrases import GOODBYE, UPCOMING, UPCOMING_CANCELLED, UPCOMING_KEPT
from agent.dialogue.slots import say_slot
from agent.dialogue.state import AboutBooking, Action, Ask


def greeting(conv: Context, upcoming: Upcoming) -> str:
    conv.ask(Ask.UPCOMING)
    return f"{conv.plan.greeting} {UPCOMING.format(slot=say_slot(upcoming.slot, conv.now))}"


def answer(conv: Context, h: Heard) -> str | None:
    """The caller's answer about their booking; None: they call about something else (the
    conversation goes on as for any caller)."""
    upcoming = conv.upcoming
    assert upcoming is not None
    conv.pending = None
    if h.about_booking is AboutBooking.CANCEL:
        conv.outcome.action = Action.CANCEL
        conv.outcome.cancels = upcoming.call_id
        return f"{UPCOMING_CANCELLED.format(slot=say_slot(upcoming.slot, conv.now))} {GOODBYE}"
    if h.about_booking is AboutBooking.MOVE:
        for name, value in (("name", upcoming.name), ("address", upcoming.address), ("problem", upcoming.problem)):
            if value and getattr(conv.lead, name) is None:
                conv.set_field(name, value)
        conv.confirmed.update({"address", "phone"})
        conv.outcome.moves = upcoming.call_id
        if h.when is not None:
            conv.pref_when = h.when
        return close(conv, conv.urgency)
    if h.about_booking is AboutBooking.KEEP or (h.yes is False and len(h.tokens) <= 3):
        conv.outcome.action = Action.INFO
        return f"{UPCOMING_KEPT.format(slot=say_slot(upcoming.slot, conv.now))} {GOODBYE}"
    return None
