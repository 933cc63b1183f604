"""A pending question asked again: after a silence, or once a side question was answered."""

from __future__ import annotations

from agent.dialogue.closing import offer_text
from agent.dialogue.context import Context
from agent.dialogue.lead import Pending
from agent.dialogue.phrases import CRITICAL_ASK, DANGER_CHECK, OFFER_HELP, TAKE_MESSAGE, UPCOMING_AGAIN, WHAT_TO_FIX
from agent.dialogue.state import Ask


def ask_again(conv: Context, pending: Pending) -> str:
    """The question still pending, asked again (after a silence, an answer to a side question)."""
    if pending.kind is Ask.CHECK and pending.trigger and pending.trigger.check:
        return pending.trigger.check.question
    if pending.kind is Ask.FIELD and pending.field:
        fl = next((x for x in conv.plan.fields if x.name == pending.field), None)
        return fl.question if fl else ""
    if pending.kind is Ask.SLOT:
        return offer_text(conv)
    if pending.kind is Ask.MESSAGE:
        return TAKE_MESSAGE
    if pending.kind is Ask.RECAP:
        return conv.recap_text()
    if pending.kind is Ask.MORE:
        return OFFER_HELP
    if pending.kind is Ask.FIX:
        return WHAT_TO_FIX
    if pending.kind is Ask.DANGER:
        return DANGER_CHECK
    if pending.kind is Ask.UPCOMING:
        return UPCOMING_AGAIN
    return CRITICAL_ASK[("name", "address")]
