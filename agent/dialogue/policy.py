"""The conversation: slot filling driven by the dialplan, rules first, the LLM only for what rules
missed (within its budget), emergencies detected with the trade's own words.

Text in, text out: the live call feeds ASR text and speaks the replies; `standardiste simulate`
feeds typed turns. Every field is handed to `on_field` the moment it is understood.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from agent.dialogue.booking import Slot, free_slots, in_hours, pick, say_slot
from agent.dialogue.phrases import (
    ASK_ADDRESS_FIRST,
    ASK_NAME_ADDRESS_FIRST,
    CALL_BACK_FOR_BOOKING,
    GOODBYE,
    HEAR_NOTHING,
    MESSAGE_TAKEN,
    NO_SLOT_SOON,
    NO_SLOT_THEN,
    NOT_INTERESTED,
    NOT_UNDERSTOOD,
    QUESTION_PASSED_ON,
    SMS_CONFIRMATION,
    STILL_THERE,
    TAKE_MESSAGE,
    TRANSFER,
    TRANSFER_ON_REQUEST,
)
from agent.dialogue.schema import Dialplan, Trigger
from agent.dialogue.state import Action, Ask, Severity, TransferWhen
from agent.dialogue.understand import (
    When,
    address,
    asks_for_artisan,
    correction,
    dont_know,
    first_match,
    fold,
    format_phone,
    has_any,
    person_name,
    phone_number,
    spam,
    spelled,
    when,
    wrong_number,
    yes_no,
)
from agent.llm.base import DEFAULT_BUDGET_S, Extractor, within_budget

log = logging.getLogger(__name__)

LLM_FIELDS: Final = ("name", "address", "problem")


@dataclass
class Lead:
    name: str | None = None
    address: str | None = None
    phone: str | None = None
    problem: str | None = None
    trade: str = ""
    message: str | None = None

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


@dataclass
class Pending:
    kind: Ask
    field: str | None = None
    trigger: Trigger | None = None
    tries: int = 0


@dataclass
class Conversation:
    plan: Dialplan
    now: datetime
    caller_id: str | None = None
    extractor: Extractor | None = None
    busy: Sequence[Slot] = ()
    on_field: Callable[[str, str], None] | None = None
    lead: Lead = field(default_factory=Lead)
    outcome: Outcome = field(default_factory=Outcome)
    said: list[str] = field(default_factory=list)
    """Everything the caller said, for the emergency rules."""
    pending: Pending | None = None
    confirmed: set[str] = field(default_factory=set)
    checks: dict[str, Severity] = field(default_factory=dict)
    """Trigger id -> severity decided by its check question."""
    offered: list[Slot] = field(default_factory=list)
    pref_when: When | None = None
    silences: int = 0

    def __post_init__(self) -> None:
        self.lead.trade = self.plan.trade.trade
        self.open = in_hours(self.plan, self.now)
        if self.caller_id:
            # The number the call comes from is the callback number until the caller says otherwise.
            self._set("phone", self.caller_id)

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> str:
        first = self._next_question()
        return f"{self.plan.greeting} {first}".strip()

    @property
    def done(self) -> bool:
        return self.outcome.action is not None

    def finish(self) -> None:
        """The caller hung up or the turns ran out: whatever was heard becomes a message."""
        if self.outcome.action is None:
            self.outcome.action = Action.MESSAGE

    # --- urgency ---------------------------------------------------------------------------------
    def fired(self) -> list[Trigger]:
        text = fold(" ".join(self.said))
        return [t for t in self.plan.triggers if all(has_any(text, list(group)) for group in t.all)]

    def _in_season(self, trig: Trigger) -> bool:
        return not trig.months or self.now.month in trig.months

    def severity_of(self, trig: Trigger) -> Severity:
        if not self._in_season(trig):
            return trig.otherwise
        if trig.id in self.checks:
            return self.checks[trig.id]
        return trig.severity

    @property
    def urgency(self) -> Severity:
        levels = [self.severity_of(t) for t in self.fired()]
        return max(levels, key=lambda s: s.rank, default=Severity.NORMAL)

    # --- one caller turn ---------------------------------------------------------------------------
    async def turn(self, text: str) -> str:
        if self.done:
            return ""
        text = text.strip()
        f = fold(text)
        if not f:
            return self._silence()
        self.silences = 0
        self.said.append(text)
        if self.plan.transfer.on_request and asks_for_artisan(f) and self._transfer_allowed():
            self.outcome.action = Action.TRANSFER
            self.outcome.transfer_to = self.plan.transfer.endpoint
            self.outcome.requested = True
            self.pending = None
            return TRANSFER_ON_REQUEST
        if wrong_number(f):
            self.outcome.action = Action.INFO
            return f"Pas de souci. Vous êtes chez {self.plan.business}, {self.plan.trade.label}. {GOODBYE}"
        if spam(f):
            self.outcome.action = Action.INFO
            return f"{NOT_INTERESTED} {GOODBYE}"
        pending = self.pending
        prefix = ""
        if pending is not None and pending.kind == Ask.MESSAGE:
            self.lead.message = text
            self._fill_from_free_text(text)
            self.outcome.action = Action.MESSAGE
            return f"{MESSAGE_TAKEN} {GOODBYE}"
        if pending is not None and pending.kind == Ask.SLOT:
            return self._slot_answer(text)
        faq = self._faq(f)
        if faq and _is_question(text, f):
            # A question about prices or the area is not the request itself: answer, then go on.
            return f"{faq} {self._decide()}"
        answered = await self._answer(pending, text, f)
        if not answered and _is_question(text, f) and not self._trade_words(f) and not self.fired():
            # A question we have no answer for: passed on to the artisan, then back to ours.
            self.lead.message = f"{self.lead.message} / {text}" if self.lead.message else text
            return f"{QUESTION_PASSED_ON} {self._ask_again(pending)}"
        if not answered:
            if pending is not None:
                pending.tries += 1
                if pending.tries > self.plan.max_retries:
                    self.pending = Pending(Ask.MESSAGE)
                    return TAKE_MESSAGE
                prefix = NOT_UNDERSTOOD + " " if not dont_know(f) else ""
        return prefix + self._decide()

    async def _answer(self, pending: Pending | None, text: str, f: str) -> bool:
        """Take what this turn says; True when it answered the pending question."""
        answered = False
        if pending is not None and pending.kind == Ask.CHECK and pending.trigger is not None:
            yn = yes_no(f)
            chk = pending.trigger.check
            assert chk is not None
            if yn is True:
                self.checks[pending.trigger.id] = chk.if_yes
            elif yn is False:
                self.checks[pending.trigger.id] = chk.if_no
            elif dont_know(f):
                self.checks[pending.trigger.id] = chk.if_unknown
            if pending.trigger.id in self.checks:
                self.pending = None
                answered = True
        elif pending is not None and pending.kind == Ask.CONFIRM and pending.field:
            yn = yes_no(f)
            fixed = correction(text)
            if yn is True and not fixed:
                self.confirmed.add(pending.field)
                self.pending = None
                return True
            if fixed:
                said = re.sub(r"^\W*(non|pas du tout|erreur)\b\W*(c'est|c est|plutôt|plutot)?\s*", "", text,
                              flags=re.IGNORECASE)
                if self._set_from(pending.field, said, text):
                    self.pending = None
                    return True
            if yn is False:
                self._clear(pending.field)
                self.pending = None
                return True
        elif pending is not None and pending.kind == Ask.CONFIRM_CALLERID:
            yn = yes_no(f)
            number = phone_number(text)
            if number:
                self._set("phone", number)
                self.confirmed.add("phone")
                self.pending = None
                return True
            if yn is True and self.caller_id:
                self._set("phone", self.caller_id)
                self.confirmed.add("phone")
                self.pending = None
                return True
            if yn is False:
                self._clear("phone")
                self.pending = Pending(Ask.FIELD, "phone")
                return True
        # Fields may come at any time, in any order, several at once.
        got = self._extract(text, f, pending)
        if pending is not None and pending.kind in (Ask.FIELD, Ask.NAME_ADDRESS):
            wanted: set[str] = {pending.field or ""} if pending.kind == Ask.FIELD else {"name", "address"}
            if got & wanted:
                answered = True
            elif self.extractor is not None and wanted & set(LLM_FIELDS) and not dont_know(f) and yes_no(f) is None:
                answered = await self._ask_llm(text, sorted(wanted & set(LLM_FIELDS)))
            if pending.kind == Ask.NAME_ADDRESS and self.lead.address:
                answered = True
            if answered:
                self.pending = None
        return answered or bool(got and pending is None)

    def _extract(self, text: str, f: str, pending: Pending | None) -> set[str]:
        got: set[str] = set()
        addr = address(text, self.plan.area)
        if addr is not None and (self.lead.address is None or (pending and pending.field == "address")):
            self._set("address", str(addr))
            got.add("address")
        number = phone_number(text)
        if number is not None:
            self._set("phone", number)
            got.add("phone")
        asking_name = pending is not None and (pending.field == "name" or pending.kind == Ask.NAME_ADDRESS)
        name_text = _without_address(text)
        name = spelled(text) if asking_name else None
        name = name or person_name(name_text, asked=asking_name and bool(name_text.strip()))
        if name and self._trade_words(fold(name)):
            name = None  # "évier bouché" is a problem, not a name
        if name and (self.lead.name is None or asking_name):
            self._set("name", name)
            got.add("name")
        problem = self._problem(f)
        if problem and (self.lead.problem is None or (pending and pending.field == "problem")):
            self._set("problem", problem)
            got.add("problem")
        elif (pending is not None and pending.field == "problem" and not got and not dont_know(f) and len(f) > 6
              and not _is_question(text, f)):
            self._set("problem", text.rstrip(" .!?"))
            got.add("problem")
        w = when(text, self.now)
        if w is not None:
            self.pref_when = w
        return got

    def _problem(self, f: str) -> str | None:
        """The trade's typical problem named first in what was said."""
        best: tuple[tuple[int, int], str] | None = None
        for p in self.plan.trade.problems:
            at = first_match(f, list(p.words))
            if at is not None and (best is None or at < best[0]):
                best = (at, p.label)
        return best[1] if best else None

    def _trade_words(self, folded: str) -> bool:
        words = [w for p in self.plan.trade.problems for w in p.words]
        return has_any(folded, words + list(self.plan.trade.vocabulary))

    def _fill_from_free_text(self, text: str) -> None:
        self._extract(text, fold(text), Pending(Ask.FIELD, "name"))
        if self.lead.problem is None:
            self._set("problem", text.rstrip(" .!?"))

    async def _ask_llm(self, text: str, fields: list[str]) -> bool:
        assert self.extractor is not None
        result = await within_budget(self.extractor, text, fields, DEFAULT_BUDGET_S)
        got = False
        for name in fields:
            value = result.fields.get(name)
            if value and _plausible(name, value, text):
                self._set(name, value)
                got = True
        return got

    def _set_from(self, name: str, value: str, text: str) -> bool:
        if name == "address":
            addr = address(text, self.plan.area) or address(value, self.plan.area)
            if addr:
                self._set("address", str(addr))
                return True
            return False
        if name == "phone":
            number = phone_number(value)
            if number:
                self._set("phone", number)
                return True
            return False
        if name == "name":
            current = (self.lead.name or "").split()
            new = spelled(value) or person_name(value, asked=True)
            if not new:
                return False
            if len(new.split()) == 1 and len(current) >= 2:
                new = " ".join([*current[:-1], new])  # "non, Dubois avec un D": the surname only
            self._set("name", new)
            return True
        self._set(name, value)
        return True

    def _set(self, name: str, value: str) -> None:
        setattr(self.lead, name, value)
        self.confirmed.discard(name)
        if self.on_field is not None:
            self.on_field(name, value)

    def _clear(self, name: str) -> None:
        setattr(self.lead, name, None)
        self.confirmed.discard(name)

    def _faq(self, f: str) -> str | None:
        for item in self.plan.faq:
            if has_any(f, list(item.keywords)):
                return item.answer
        return None

    def _silence(self) -> str:
        self.silences += 1
        if self.silences > self.plan.max_retries:
            self.outcome.action = Action.MESSAGE if any(self.lead.as_dict()[k] for k in ("name", "phone", "problem")) \
                else Action.INFO
            return f"{HEAR_NOTHING} {GOODBYE}"
        return f"{STILL_THERE} {self._ask_again(self.pending)}"

    # --- what to say next ---------------------------------------------------------------------------
    def _decide(self) -> str:
        fired = self.fired()
        urgency = self.urgency
        if self._should_transfer(urgency):
            advice = " ".join(t.advice for t in fired if t.advice and self.severity_of(t) is Severity.CRITICAL)
            self.outcome.action = Action.TRANSFER
            self.outcome.transfer_to = self.plan.transfer.endpoint
            self.pending = None
            return f"{advice} {TRANSFER}".strip()
        # An emergency whose gravity depends on a question: know where to go first, then ask it.
        for trig in fired:
            if trig.check is not None and trig.id not in self.checks and self._in_season(trig):
                asked_where = "where" in self.confirmed
                if self.lead.address is None and not asked_where:
                    self.confirmed.add("where")
                    self._ask(Ask.NAME_ADDRESS)
                    return ASK_ADDRESS_FIRST if self.lead.name else ASK_NAME_ADDRESS_FIRST
                self._ask(Ask.CHECK, trigger=trig)
                return trig.check.question
        question = self._next_question()
        if question:
            return question
        return self._close(urgency)

    def _should_transfer(self, urgency: Severity) -> bool:
        tr = self.plan.transfer
        if tr.when is TransferWhen.NEVER or urgency is Severity.NORMAL:
            return False
        if urgency is Severity.URGENT and tr.when is not TransferWhen.URGENT:
            return False
        return self._transfer_allowed()

    def _transfer_allowed(self) -> bool:
        return self.open or self.plan.transfer.after_hours

    def after_failed_transfer(self) -> str:
        """The artisan could not be reached: the dialplan's `transfer.on_failure` says what next.
        MESSAGE: the caller leaves a voice message (the session records it); BOOKING: the
        conversation goes on to an appointment."""
        if self.plan.transfer.on_failure is Action.BOOKING and self.plan.booking.enabled:
            self.outcome = Outcome()
            return self._close(self.urgency)
        self.outcome.action = Action.MESSAGE
        return ""

    def _ask(self, kind: Ask, name: str | None = None, trigger: Trigger | None = None) -> None:
        """Set the pending question, keeping the count of tries when it is the same one again."""
        cur = self.pending
        if cur is not None and (cur.kind, cur.field, cur.trigger) == (kind, name, trigger):
            return
        self.pending = Pending(kind, name, trigger)

    def _next_question(self) -> str:
        for fl in self.plan.fields:
            value = getattr(self.lead, fl.name)
            if value is None:
                self._ask(Ask.FIELD, fl.name)
                return fl.question
            if fl.name == "phone" and value == self.caller_id and "phone" not in self.confirmed:
                self._ask(Ask.CONFIRM_CALLERID, "phone")
                return f"Puis-je vous rappeler au {format_phone(value)} ?"
            if fl.confirm and fl.name not in self.confirmed:
                self._ask(Ask.CONFIRM, fl.name)
                shown = format_phone(value) if fl.name == "phone" else value
                return f"J'ai noté : {shown}. C'est bien ça ?"
        return ""

    def _ask_again(self, pending: Pending | None) -> str:
        if pending is None:
            return self._decide()
        if pending.kind == Ask.CHECK and pending.trigger and pending.trigger.check:
            return pending.trigger.check.question
        if pending.kind == Ask.FIELD and pending.field:
            fl = next((x for x in self.plan.fields if x.name == pending.field), None)
            return fl.question if fl else ""
        if pending.kind == Ask.SLOT:
            return self._offer_text()
        if pending.kind == Ask.MESSAGE:
            return TAKE_MESSAGE
        if pending.kind == Ask.CONFIRM_CALLERID and self.caller_id:
            return f"Puis-je vous rappeler au {format_phone(self.caller_id)} ?"
        if pending.kind == Ask.CONFIRM and pending.field:
            return f"J'ai noté : {getattr(self.lead, pending.field)}. C'est bien ça ?"
        return "Quel est votre nom et votre adresse ?"

    def _close(self, urgency: Severity) -> str:
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
        self.pending = Pending(Ask.SLOT)
        lead = "C'est urgent : " if urgency is not Severity.NORMAL else ""
        return lead + self._offer_text()

    def _offer_text(self) -> str:
        options = [say_slot(s, self.now) for s in self.offered]
        if len(options) == 1:
            return f"Je peux vous proposer un passage {options[0]}. Cela vous convient-il ?"
        return "Je peux vous proposer un passage " + ", ou ".join(options) + ". Lequel vous convient ?"

    def _slot_answer(self, text: str) -> str:
        assert self.pending is not None
        chosen = pick(text, self.offered, self.now)
        if chosen is not None:
            self.outcome.action = Action.BOOKING
            self.outcome.booking = chosen
            self.pending = None
            sms = f" {SMS_CONFIRMATION}" if self.lead.phone else ""
            return f"C'est réservé pour {say_slot(chosen, self.now)}.{sms} {GOODBYE}"
        w = when(text, self.now)
        self.pending.tries += 1
        if w is not None or yes_no(fold(text)) is False:
            if self.pending.tries > self.plan.max_retries:
                self.outcome.action = Action.MESSAGE
                return f"{CALL_BACK_FOR_BOOKING} {GOODBYE}"
            if w is not None:
                self.pref_when = w
            slots = free_slots(self.plan, self.now, self.busy, urgent=self.urgency is not Severity.NORMAL, pref=w)
            if slots:
                self.offered = slots
                return self._offer_text()
            return NO_SLOT_THEN
        if self.pending.tries > self.plan.max_retries:
            self.outcome.action = Action.MESSAGE
            return f"{CALL_BACK_FOR_BOOKING} {GOODBYE}"
        return f"{NOT_UNDERSTOOD} {self._offer_text()}"


_NUMBER_START = re.compile(r"\b(\d{1,4}|un|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|treize|"
                           r"quatorze|quinze|seize|vingt|trente|quarante|cinquante|soixante|cent)\b", re.IGNORECASE)


def _without_address(text: str) -> str:
    """The text minus any address (so a street or a city is not taken for a name): clauses that
    hold one are cut where the street number starts; a city alone after it is dropped."""
    out: list[str] = []
    after_address = False
    for clause in re.split(r"[,.;!?]", text):
        if address(clause) is not None:
            m = _NUMBER_START.search(clause)
            head = clause[: m.start()] if m else ""
            if head.strip():
                out.append(head)
            after_address = True
            continue
        if after_address and len(clause.split()) <= 3:
            continue  # "15 rue Victor Hugo, Nice": the city
        out.append(clause)
    return ", ".join(c.strip() for c in out if c.strip())


QUESTION_WORDS: Final = ("quel", "quelle", "quels", "quelles", "combien", "est ce", "vous", "c est combien",
                          "pouvez vous", "faites vous", "comment", "ou", "quand", "a quelle")


def _is_question(text: str, folded: str) -> bool:
    return text.rstrip().endswith("?") or folded.startswith(QUESTION_WORDS)


def _plausible(name: str, value: str, text: str) -> bool:
    """An LLM value is kept only if its words were actually said (no invented names)."""
    said = fold(text)
    words = [w for w in fold(value).split() if len(w) > 2]
    return bool(words) and all(w in said for w in words)


