"""What a conversation knows and waits for: the lead, the outcome, the question pending, what was
heard and decided so far. State only: the decisions (what to say next) are `policy.Conversation`'s
and the end of the call's (`closing`, `returning`, `asking`), which all read and write this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from agent.dialogue.dialplan import Dialplan
from agent.dialogue.heard import Expect, Heard
from agent.dialogue.lead import Lead, Outcome, Pending, Upcoming
from agent.dialogue.phrases import recap
from agent.dialogue.places import Address
from agent.dialogue.profiles import Trigger
from agent.dialogue.slots import Agenda, Slot, in_hours
from agent.dialogue.state import Action, Ask, Severity
from agent.dialogue.times import When
from agent.dialogue.urgency import Assessment, assess


@dataclass
class Context:
    plan: Dialplan
    now: datetime
    caller_id: str | None = None
    busy: Sequence[Slot] = ()
    on_field: Callable[[str, str], None] | None = None
    """Called with every field the moment it is known (the session saves it)."""
    agenda: Agenda | None = None
    """The artisan's live agenda (calendar, bookings, other calls' offers); `busy` alone when None."""
    upcoming: Upcoming | None = None
    """The caller's next booking (a returning caller), greeted with it."""
    lead: Lead = field(default_factory=Lead)
    outcome: Outcome = field(default_factory=Outcome)
    heard: list[Heard] = field(default_factory=list)
    """Everything the caller said, understood once."""
    pending: Pending | None = None
    confirmed: set[str] = field(default_factory=set)
    checks: dict[str, Severity] = field(default_factory=dict)
    """Trigger id -> severity decided by its check question."""
    offered: list[Slot] = field(default_factory=list)
    pref_when: When | None = None
    silences: int = 0
    asked: set[Ask] = field(default_factory=set)
    """Questions asked once at most (where to go first, the critical question)."""
    place: Address | None = None
    since: int = 0
    """Utterances before this one no longer count for the urgency: the caller explicitly said it
    is not urgent after all (the only way urgency is ever lowered)."""
    peak: Severity = Severity.NORMAL
    """The highest urgency reached so far: a later turn never lowers it (but by `since`)."""

    def __post_init__(self) -> None:
        self.lead.trade = self.plan.trade.trade
        self.open = in_hours(self.plan, self.now)
        if self.caller_id:
            # The number the call comes from is the callback number until the caller says otherwise.
            self.set_field("phone", self.caller_id)

    @property
    def done(self) -> bool:
        return self.outcome.action is not None

    def finish(self) -> None:
        """The caller hung up or the turns ran out: whatever was heard becomes a message."""
        if self.outcome.action is None:
            self.outcome.action = Action.MESSAGE

    def assessment(self) -> Assessment:
        a = assess(self.plan, self.now, self.heard[self.since:], self.checks)
        if a.severity.rank < self.peak.rank:
            a = replace(a, severity=self.peak, reason=f"{a.reason} (kept: {self.peak})".strip(), hazard=None)
        return a

    @property
    def urgency(self) -> Severity:
        return self.assessment().severity

    def expect(self) -> Expect:
        """What the next utterance is read for: the question pending, the slots offered."""
        p = self.pending
        return Expect(p.kind if p else None, p.field if p else None, tuple(self.offered))

    # --- changes ------------------------------------------------------------------------------------
    def set_field(self, name: str, value: str) -> None:
        setattr(self.lead, name, value)
        self.confirmed.discard(name)
        if self.on_field is not None:
            self.on_field(name, value)

    def ask(self, kind: Ask, name: str | None = None, trigger: Trigger | None = None) -> None:
        """Set the pending question, keeping the count of tries when it is the same one again."""
        cur = self.pending
        if cur is not None and (cur.kind, cur.field, cur.trigger) == (kind, name, trigger):
            return
        self.pending = Pending(kind, name, trigger)

    # --- the slots ----------------------------------------------------------------------------------
    def busy_slots(self) -> Sequence[Slot] | None:
        """The artisan's busy times; None when the calendar could not be read in time."""
        return self.agenda.busy() if self.agenda is not None else self.busy

    def hold_offered(self) -> None:
        """The slots offered are held for this call (other calls are not offered them)."""
        if self.agenda is not None:
            self.agenda.hold(self.offered)

    # --- the read-back ------------------------------------------------------------------------------
    def recap_fields(self) -> set[str]:
        return {fl.name for fl in self.plan.fields if fl.confirm} | {"phone"}

    def recap_text(self) -> str:
        shown = self.recap_fields()
        return recap(self.lead.name if "name" in shown else None,
                     self.lead.address if "address" in shown else None, self.lead.phone)
