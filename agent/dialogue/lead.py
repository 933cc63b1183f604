"""What a conversation builds: the lead, the outcome, and the question it waits an answer to (and a
returning caller's booking it starts from)."""

from __future__ import annotations

from dataclasses import dataclass

from agent.dialogue.profiles import Trigger
from agent.dialogue.slots import Slot
from agent.dialogue.state import Action, Ask, Hazard


@dataclass(frozen=True)
class Upcoming:
    """A returning caller's next booking, from the store."""

    call_id: int
    """The call that booked it (its lead, its calendar event)."""
    slot: Slot
    name: str | None
    address: str | None
    problem: str | None


@dataclass
class Lead:
    name: str | None = None
    address: str | None = None
    phone: str | None = None
    problem: str | None = None
    trade: str = ""
    message: str | None = None
    sms_refused: bool = False
    """The caller said they want no SMS."""

    def as_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "address": self.address, "phone": self.phone, "problem": self.problem,
                "trade": self.trade}


@dataclass
class Outcome:
    action: Action | None = None
    """None while the call goes on."""
    booking: Slot | None = None
    transfer_to: str | None = None
    requested: bool = False
    """The transfer is the caller's request (not an emergency)."""
    moves: int | None = None
    """The booking replaces the one this call made (a returning caller moved it)."""
    cancels: int | None = None
    """The booking this call made is cancelled (Action.CANCEL)."""


@dataclass
class Pending:
    kind: Ask
    field: str | None = None
    trigger: Trigger | None = None
    tries: int = 0
    hazard: Hazard | None = None
    """The hazard a targeted safety question (Ask.DANGER) is about."""
