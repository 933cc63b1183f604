"""What a conversation's booking outcome does to the store, the calendar and the SMS: a new
booking held (its event queued), a returning caller's booking moved (the same event, moved) or
cancelled (the event removed), each in one transaction with what it causes."""

from __future__ import annotations

from concurrent.futures import Future

from agent.actions.delivery import Outbox
from agent.dialogue.dialplan import Dialplan
from agent.dialogue.lead import Outcome
from agent.dialogue.state import Action
from agent.store.db import Store


def apply_booking(store: Store, outbox: Outbox, plan: Dialplan, call_id: int, outcome: Outcome) -> Future[None] | None:
    """Carry out the outcome's booking part; the store's future (None when there is nothing to do)."""
    booked_by = outcome.moves or outcome.cancels
    done: Future[None] | None = None
    if outcome.action is Action.BOOKING and outcome.booking is not None:
        slot = outcome.booking
        start, end = slot.start.timestamp(), slot.end.timestamp()
        if booked_by is not None:  # a returning caller moved their booking
            done = store.move_booking(booked_by, start, end,
                                      then=outbox.moved(plan, booked_by, call_id, slot.start, slot.end))
            store.add_action(call_id, "booking", slot.start.isoformat(), "moved", f"call {booked_by}")
        else:
            done = store.hold_slot(call_id, start, end, then=outbox.booking(plan, call_id, slot.start, slot.end))
            store.add_action(call_id, "booking", slot.start.isoformat(), "held")
    elif outcome.action is Action.CANCEL and booked_by is not None:
        done = store.cancel_booking(booked_by, then=outbox.cancelled(plan, booked_by, call_id))
        store.add_action(call_id, "booking", "", "cancelled", f"call {booked_by}")
    if done is not None:
        done.add_done_callback(lambda _f: outbox.poke())
    return done
