"""A returning caller: a number with an upcoming booking is greeted with it, and can move it,
cancel it, or call about something else.

    Vous avez rendez-vous jeudi 3 décembre à 8 h. Voulez-vous le déplacer ou l'annuler ?

Moving offers the next free slots (the caller's own booking no longer counts as busy) and ends
in a booking that replaces the old one (`Outcome.moves`); cancelling ends with `Action.CANCEL`.
The session carries both out in the store, the calendar and the SMS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from agent.dialogue.booking import Slot, say_slot
from agent.dialogue.phrases import GOODBYE, UPCOMING, UPCOMING_CANCELLED, UPCOMING_KEPT
from agent.dialogue.state import Action, Ask

if TYPE_CHECKING:
    from agent.dialogue.heard import Heard
    from agent.dialogue.policy import Conversation

CANCEL: Final = re.compile(r"\b(?:annul\w*|supprim\w*|plus besoin|pas la peine|(?:ne )?pourr(?:ai|ais|a) pas "
                           r"(?:etre la|venir|y etre))")
MOVE: Final = re.compile(r"\b(?:deplac\w*|decal\w*|report\w*|chang\w*|modifi\w*|avanc\w*|repouss\w*|"
                         r"autre (?:jour|date|heure|moment|creneau)|plus tard|plus tot)")
KEEP: Final = re.compile(r"\b(?:je confirme|maintenu|on garde|je garde|c est (?:toujours )?bon|confirmer|"
                         r"rien a changer)\b")


@dataclass(frozen=True)
class Upcoming:
    """The caller's next booking, from the store."""

    call_id: int
    """The call that booked it (its lead, its calendar event)."""
    slot: Slot
    name: str | None
    address: str | None
    problem: str | None


def greeting(conv: Conversation, upcoming: Upcoming) -> str:
    conv._ask(Ask.UPCOMING)
    return f"{conv.plan.greeting} {UPCOMING.format(slot=say_slot(upcoming.slot, conv.now))}"


def answer(conv: Conversation, h: Heard) -> str | None:
    """The caller's answer about their booking; None: they call about something else (the
    conversation goes on as for any caller)."""
    from agent.dialogue.closing import close

    upcoming = conv.upcoming
    assert upcoming is not None
    conv.pending = None
    f = h.folded
    if CANCEL.search(f):
        conv.outcome.action = Action.CANCEL
        conv.outcome.cancels = upcoming.call_id
        return f"{UPCOMING_CANCELLED.format(slot=say_slot(upcoming.slot, conv.now))} {GOODBYE}"
    if MOVE.search(f):
        for name, value in (("name", upcoming.name), ("address", upcoming.address), ("problem", upcoming.problem)):
            if value and getattr(conv.lead, name) is None:
                conv._set(name, value)
        conv.confirmed.update({"address", "phone"})
        conv.outcome.moves = upcoming.call_id
        if h.when is not None:
            conv.pref_when = h.when
        return close(conv, conv.urgency)
    if KEEP.search(f) or (h.yes is False and len(f.split()) <= 3):
        conv.outcome.action = Action.INFO
        return f"{UPCOMING_KEPT.format(slot=say_slot(upcoming.slot, conv.now))} {GOODBYE}"
    return None
