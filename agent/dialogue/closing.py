"""The end of a qualified call: an appointment offered from the free slots, or a callback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.dialogue.booking import free_slots, pick, say_slot
from agent.dialogue.phrases import CALL_BACK_FOR_BOOKING, GOODBYE, NO_SLOT_SOON, NO_SLOT_THEN, NOT_UNDERSTOOD, \
    SMS_CONFIRMATION
from agent.dialogue.state import Action, Ask, Severity

if TYPE_CHECKING:
    from agent.dialogue.heard import Heard
    from agent.dialogue.policy import Conversation


class Closing:
    """Mixed into `Conversation`: what it says once every field is known."""

    def _close(self: Conversation, urgency: Severity) -> str:
        if (not self.open and self.plan.after_hours_action is Action.MESSAGE) or not self.plan.booking.enabled:
            self.outcome.action = Action.MESSAGE
            when_txt = "dès la réouverture" if not self.open else "au plus vite"
            return f"C'est noté. L'artisan vous rappellera {when_txt}. {GOODBYE}"
        urgent = urgency is not Severity.NORMAL
        self.offered = free_slots(self.plan, self.now, self.busy, urgent=urgent, pref=self.pref_when)
        if not self.offered and self.pref_when is not None:
            self.offered = free_slots(self.plan, self.now, self.busy, urgent=urgent, pref=None)
        if not self.offered:
            self.outcome.action = Action.MESSAGE
            return f"{NO_SLOT_SOON} {GOODBYE}"
        self._ask(Ask.SLOT)
        lead = "C'est urgent : " if urgent else ""
        return lead + self._offer_text()

    def _offer_text(self: Conversation) -> str:
        options = [say_slot(s, self.now) for s in self.offered]
        if len(options) == 1:
            return f"Je peux vous proposer un passage {options[0]}. Cela vous convient-il ?"
        return "Je peux vous proposer un passage " + ", ou ".join(options) + ". Lequel vous convient ?"

    def _slot_answer(self: Conversation, h: Heard) -> str:
        assert self.pending is not None
        chosen = pick(h.text, self.offered, self.now)
        if chosen is not None:
            self.outcome.action = Action.BOOKING
            self.outcome.booking = chosen
            self.pending = None
            sms = f" {SMS_CONFIRMATION}" if self.lead.phone else ""
            return f"C'est réservé pour {say_slot(chosen, self.now)}.{sms} {GOODBYE}"
        self.pending.tries += 1
        if h.when is not None or h.yes is False:
            if self.pending.tries > self.plan.max_retries:
                self.outcome.action = Action.MESSAGE
                return f"{CALL_BACK_FOR_BOOKING} {GOODBYE}"
            if h.when is not None:
                self.pref_when = h.when
            slots = free_slots(self.plan, self.now, self.busy, urgent=self.urgency is not Severity.NORMAL,
                               pref=h.when)
            if slots:
                self.offered = slots
                return self._offer_text()
            return NO_SLOT_THEN
        if self.pending.tries > self.plan.max_retries:
            self.outcome.action = Action.MESSAGE
            return f"{CALL_BACK_FOR_BOOKING} {GOODBYE}"
        return f"{NOT_UNDERSTOOD} {self._offer_text()}"
