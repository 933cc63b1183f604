"""The conversation: slot filling driven by the dialplan, rules first, the LLM only for what rules
missed (within its budget), emergencies detected with the trade's own words and the shared rules.

Text in, text out: the live call feeds ASR text and speaks the replies; `standardiste simulate`
and `standardiste chat` feed typed turns. Each utterance is understood once (`heard.hear`, for the
question pending), the policy decides from that alone, and every field is handed to `on_field` the
moment it is known. What the conversation knows is `context.Context`; this module holds the
decisions of a turn, `closing`, `returning` and `asking` those of the call's end, a returning
caller and a question asked again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Final

from agent.dialogue import names, returning
from agent.dialogue.asking import ask_again
from agent.dialogue.closing import close, slot_answer
from agent.dialogue.context import Context
from agent.dialogue.heard import Heard, hear
from agent.dialogue.lead import Outcome, Pending
from agent.dialogue.phrases import (
    ASK_ADDRESS_FIRST,
    ASK_NAME_ADDRESS_FIRST,
    CRITICAL_ASK,
    DANGER_CHECK,
    GOODBYE,
    HEAR_NOTHING,
    MESSAGE_TAKEN,
    NOT_INTERESTED,
    NOT_UNDERSTOOD,
    OFFER_HELP,
    QUESTION_PASSED_ON,
    SAFETY_ADVICE,
    SAFETY_QUESTIONS,
    STILL_THERE,
    TAKE_MESSAGE,
    TRANSFER,
    TRANSFER_ON_REQUEST,
    WHAT_TO_FIX,
    WRONG_NUMBER,
    out_of_area,
)
from agent.dialogue.places import in_area
from agent.dialogue.safety import means_danger, starts_with_a_name
from agent.dialogue.severity import SeverityModel, default_model
from agent.dialogue.state import Action, Ask, Hazard, Severity, TransferWhen
from agent.dialogue.text import fold
from agent.dialogue.urgency import DANGER, Said, doubtful, fires, read, vulnerable_in
from agent.llm.base import DEFAULT_BUDGET_S, Extractor, within_budget

log = logging.getLogger(__name__)

MIN_READ_WORDS: Final = 3
"""Shorter utterances ("oui", "non merci") are not read by the learned layer: too few words for it
(it gave "oui" a 0.4 chance of a critical call)."""

LLM_FIELDS: Final = ("name", "address", "problem")


@dataclass(kw_only=True)
class Conversation(Context):
    """The decisions of each turn, on the conversation's state (`Context`)."""

    extractor: Extractor | None = None
    """The LLM, asked for a name, an address or a problem the rules did not find (within budget)."""
    reader: SeverityModel | None = field(default_factory=default_model)
    """The learned severity layer (None: the rules alone, as `make understanding` compares)."""
    _last: tuple[Pending | None, str, int] | None = field(default=None, repr=False)
    """The last turn: the question it answered (as it was), its text, and how many utterances had
    been heard before it (for a turn the caller goes on with)."""

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> str:
        if self.upcoming is not None:
            return returning.greeting(self, self.upcoming)
        return f"{self.plan.greeting} {self._next_question()}".strip()

    # --- one caller turn ---------------------------------------------------------------------------
    async def turn(self, text: str, *, continues: bool = False) -> str:
        """The reply to what the caller said. `continues`: they went on speaking after their last turn
        was taken as ended (an early end of turn): `text` is the rest of that answer, and the two are
        read as one against the question it answered (the fields it set are set again)."""
        if self.done:
            return ""
        if continues and self._last is not None:
            self.pending, before, heard_before = self._last
            text = f"{before} {text}".strip()
            del self.heard[heard_before:]
        self._last = (replace(self.pending) if self.pending is not None else None, text, len(self.heard))
        h = hear(text, self.now, self.plan.area, plan=self.plan, expect=self.expect())
        if self.reader is not None and self._about_the_problem() and len(h.tokens) >= MIN_READ_WORDS:
            h = replace(h, reading=read(self.reader, h))
        if h.empty:
            return self._silence()
        self.silences = 0
        self.heard.append(h)
        if h.retracts and len(self.heard) > 1:
            self.since, self.peak = len(self.heard) - 1, Severity.NORMAL
        reply = await self._turn(h)
        self.peak = max(self.peak, self.urgency, key=lambda s: s.rank)
        return reply

    def _about_the_problem(self) -> bool:
        """Whether the caller's next words may describe the problem (the learned layer reads those,
        not a name, an address, a number or a slot's choice)."""
        p = self.pending
        return p is None or p.kind in (Ask.MORE, Ask.DANGER, Ask.CHECK, Ask.MESSAGE) or (
            p.kind is Ask.FIELD and p.field == "problem")

    async def _turn(self, h: Heard) -> str:
        if self.plan.transfer.on_request and h.asks_for_artisan and self._transfer_allowed():
            self.outcome = Outcome(Action.TRANSFER, transfer_to=self.plan.transfer.endpoint, requested=True)
            self.pending = None
            return TRANSFER_ON_REQUEST
        if h.wrong_number:
            self.outcome.action = Action.INFO
            return f"{WRONG_NUMBER.format(business=self.plan.business, trade=self.plan.trade.label)} {GOODBYE}"
        if h.spam:
            self.outcome.action = Action.INFO
            return f"{NOT_INTERESTED} {GOODBYE}"
        pending = self.pending
        if pending is not None and pending.kind is Ask.MESSAGE:
            self.lead.message = h.text
            self._extract(h, Pending(Ask.FIELD, "name"))
            self.outcome.action = Action.MESSAGE
            return f"{MESSAGE_TAKEN} {GOODBYE}"
        if pending is not None and pending.kind is Ask.SLOT:
            return await slot_answer(self, h)
        if pending is not None and pending.kind is Ask.UPCOMING and (about := returning.answer(self, h)):
            return about
        if pending is not None and pending.kind is Ask.MORE:
            self.pending = pending = None
            if h.closing or (h.yes is False and not h.request):
                self.outcome.action = Action.INFO
                return GOODBYE
        answered = await self._answer(pending, h)
        if self._information_question(h):
            # A question, not a request: answered from the FAQ or passed on to the artisan.
            self.lead.message = f"{self.lead.message} / {h.text}" if self.lead.message else h.text
            answer = h.faq or QUESTION_PASSED_ON
            if self.lead.problem is None and Ask.MORE not in self.asked:
                self.asked.add(Ask.MORE)
                self.pending = Pending(Ask.MORE)
                return f"{answer} {OFFER_HELP}"
            return f"{answer} {self._ask_again(pending)}"
        if self.pending is not None and self.pending.kind is Ask.FIX:
            return WHAT_TO_FIX
        prefix = f"{h.faq} " if h.question and h.faq else ""
        if not answered and pending is not None:
            pending.tries += 1
            if pending.tries > self.plan.max_retries:
                self.pending = Pending(Ask.MESSAGE)
                return TAKE_MESSAGE
            prefix += NOT_UNDERSTOOD + " " if not h.dont_know else ""
        return prefix + self._decide()

    def _information_question(self, h: Heard) -> bool:
        """A question asking for information, not a request (once the caller said they want to leave
        a request, what they say to "décrivez votre problème" is the problem)."""
        asked_problem = self.pending is not None and self.pending.field == "problem" and Ask.MORE in self.asked
        return h.question and not h.request and not self.assessment_of(h) and not asked_problem

    async def _answer(self, pending: Pending | None, h: Heard) -> bool:
        """Take what this turn says; True when it answered the pending question."""
        got = self._extract(h, pending)
        if pending is None:
            return bool(got)
        kind = pending.kind
        if kind is Ask.CHECK and pending.trigger is not None and pending.trigger.check is not None:
            chk = pending.trigger.check
            answer = {True: chk.if_yes, False: chk.if_no}.get(h.yes) if h.yes is not None else (
                chk.if_unknown if h.dont_know else None)
            if answer is None:
                # Unclear ("j'ai fermé le robinet général, mais ça change rien"): the more serious
                # answer, or the danger the answer itself describes (safety first).
                worst = max(chk.if_yes, chk.if_no, key=lambda s: s.rank)
                answer = chk.if_yes if chk.about_vulnerable and vulnerable_in([h]) else worst
            self.checks[pending.trigger.id] = answer
            self.pending = None
            return True
        if kind is Ask.RECAP:
            if got & {"address", "phone", "name"}:
                self.pending = None  # corrected: read back again
                return True
            if h.yes is True:
                self.confirmed |= {f.name for f in self.plan.fields} | {"phone"}
                self.pending = None
                return True
            if h.yes is False:
                self.pending = Pending(Ask.FIX)
                return True
            return False
        if kind is Ask.FIX:
            self.pending = None
            return bool(got)
        if kind is Ask.CRITICAL:
            self.pending = None
            return True
        if kind is Ask.DANGER:
            question = SAFETY_QUESTIONS.get(pending.hazard) if pending.hazard is not None else None
            if question is None:  # the generic question (rules alone): a clear yes only
                danger = h.yes is True
            else:
                danger = means_danger(h, question, pending.hazard is Hazard.PERSON)
            self.checks[DANGER] = Severity.CRITICAL if danger else Severity.NORMAL
            self.pending = None  # whatever the answer, asked once
            return True
        wanted = {pending.field or ""} if kind is Ask.FIELD else {"name", "address"}
        answered = bool(got & wanted) or (kind is Ask.NAME_ADDRESS and (self.lead.address is not None or h.dont_know))
        if not answered and self.extractor is not None and wanted & set(LLM_FIELDS) and not h.dont_know \
                and h.yes is None:
            answered = await self._ask_llm(h.text, sorted(wanted & set(LLM_FIELDS)))
        if answered:
            self.pending = None
        return answered

    def _extract(self, h: Heard, pending: Pending | None) -> set[str]:
        """Every field this utterance gives, whatever was asked (callers volunteer them early)."""
        got: set[str] = set()
        kind = pending.kind if pending else None
        asking = pending.field if pending and kind is Ask.FIELD else None
        asking_where = asking == "address" or kind in (Ask.NAME_ADDRESS, Ask.CRITICAL, Ask.RECAP, Ask.FIX)
        if h.address is not None and (self.lead.address is None or asking_where or h.correction):
            self.place = h.address
            self.set_field("address", str(h.address))
            got.add("address")
        elif h.town is not None and asking_where and self.place is not None and self.place.city is None:
            # The address was given without its town; the town alone now ("Nice", to the read-back).
            self.place = replace(self.place, postcode=h.town.postcode, city=h.town.city, commune=h.town.commune)
            self.set_field("address", str(self.place))
            got.add("address")
        if h.phone is not None and (h.phone != self.lead.phone or kind in (Ask.RECAP, Ask.FIX)):
            self.set_field("phone", h.phone)
            got.add("phone")
        asking_name = asking == "name" or kind in (Ask.NAME_ADDRESS, Ask.CRITICAL) or (
            kind is Ask.DANGER and h.yes is None and starts_with_a_name(h))  # the answer to what they expected
        name = (h.name if asking_name else None) or h.introduced_name
        if kind in (Ask.RECAP, Ask.FIX) and (h.correction or kind is Ask.FIX) and not got and name is None:
            name = h.corrected_name if "name" in self.recap_fields() else None
        if name and (self.lead.name is None or asking_name or kind in (Ask.RECAP, Ask.FIX)):
            if len(name.split()) == 1 and self.lead.name and kind in (Ask.RECAP, Ask.FIX):
                name = names.with_surname(self.lead.name, name)  # a corrected surname
            self.set_field("name", name)
            got.add("name")
        if self.lead.problem is None or asking == "problem":
            asked = asking == "problem" and not got and not h.dont_know and len(h.folded) > 6
            if asked or h.says_problem or self.assessment_of(h):
                problem = h.problem_answer if asked else h.problem
                if problem and not self._information_question(h):
                    self.set_field("problem", problem)
                    got.add("problem")
        if h.when is not None:
            self.pref_when = h.when
        if h.refuses_sms and not self.lead.sms_refused:
            self.lead.sms_refused = True
            if self.on_field is not None:
                self.on_field("sms_refused", "1")
        return got

    def assessment_of(self, h: Heard) -> bool:
        """Whether this utterance alone fires an emergency trigger."""
        said = Said.of([h])
        return any(fires(t, said) for t in self.plan.triggers)

    async def _ask_llm(self, text: str, fields: list[str]) -> bool:
        assert self.extractor is not None
        result = await within_budget(self.extractor, text, fields, DEFAULT_BUDGET_S)
        got = False
        for name in fields:
            value = result.fields.get(name)
            if value and _plausible(value, text):
                self.set_field(name, value)
                got = True
        return got

    def _silence(self) -> str:
        self.silences += 1
        if self.silences > self.plan.max_retries:
            self.outcome.action = Action.MESSAGE if any(self.lead.as_dict()[k] for k in ("name", "phone", "problem")) \
                else Action.INFO
            return f"{HEAR_NOTHING} {GOODBYE}"
        return f"{STILL_THERE} {self._ask_again(self.pending)}"

    # --- what to say next ---------------------------------------------------------------------------
    def _decide(self) -> str:
        a = self.assessment()
        if self._should_transfer(a.severity):
            # Safety advice only for the hazard recognised: the critical triggers', else the learned one's.
            advice = " ".join(dict.fromkeys(t.advice for t in a.advised if t.advice))
            if not advice and a.learned_hazard is not None:
                advice = SAFETY_ADVICE[a.learned_hazard]
            missing = [k for k in ("name", "address") if getattr(self.lead, k) is None]
            if missing and Ask.CRITICAL not in self.asked:
                # One question, then the transfer: the artisan needs to know where to go.
                self.asked.add(Ask.CRITICAL)
                self.pending = Pending(Ask.CRITICAL)
                return f"{advice} {CRITICAL_ASK[tuple(missing)]}".strip()
            self.outcome.action = Action.TRANSFER
            self.outcome.transfer_to = self.plan.transfer.endpoint
            self.pending = None
            return TRANSFER if Ask.CRITICAL in self.asked else f"{advice} {TRANSFER}".strip()
        trig = doubtful(a, self.now, self.checks)
        in_doubt = a.hazard is not None if self.reader is not None else (
            a.doubtful or a.severity is Severity.URGENT)
        if trig is None and in_doubt and a.severity is not Severity.CRITICAL and not self.checks \
                and Ask.DANGER not in self.asked \
                and self.plan.transfer.when is not TransferWhen.NEVER and self._transfer_allowed():
            # Possible danger, not certain: one short question about that hazard (once).
            self.asked.add(Ask.DANGER)
            self.pending = Pending(Ask.DANGER, hazard=a.hazard)
            return SAFETY_QUESTIONS[a.hazard].text if a.hazard is not None else DANGER_CHECK
        if trig is not None and trig.check is not None:
            if self.lead.address is None and Ask.NAME_ADDRESS not in self.asked:
                self.asked.add(Ask.NAME_ADDRESS)
                self.ask(Ask.NAME_ADDRESS)
                return ASK_ADDRESS_FIRST if self.lead.name else ASK_NAME_ADDRESS_FIRST
            self.ask(Ask.CHECK, trigger=trig)
            return trig.check.question
        if self.place is not None and not in_area(self.place.commune, self.plan.area):
            town = self.place.city or ""
            self.lead.message = f"Hors zone d'intervention ({town})"
            self.outcome.action = Action.MESSAGE
            return f"{out_of_area(town)} {GOODBYE}"
        question = self._next_question()
        return question or close(self, a.severity)

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
        if self.plan.transfer.on_failure is Action.BOOKING and self.plan.booking.enabled \
                and self.urgency is not Severity.CRITICAL:  # a critical call is never booked
            self.outcome = Outcome()
            return close(self, self.urgency)
        self.outcome.action = Action.MESSAGE
        return ""

    def _next_question(self) -> str:
        for fl in self.plan.fields:
            if getattr(self.lead, fl.name) is None:
                self.ask(Ask.FIELD, fl.name)
                return fl.question
        to_confirm = [fl.name for fl in self.plan.fields if fl.confirm and fl.name not in self.confirmed]
        if self.lead.phone and self.lead.phone == self.caller_id and "phone" not in self.confirmed:
            to_confirm.append("phone")
        if to_confirm:
            self.ask(Ask.RECAP)
            return self.recap_text()
        return ""

    def _ask_again(self, pending: Pending | None) -> str:
        return self._decide() if pending is None else ask_again(self, pending)


def _plausible(value: str, text: str) -> bool:
    """An LLM value is kept only if its words were actually said (no invented names)."""
    said = fold(text)
    words = [w for w in fold(value).split() if len(w) > 2]
    return bool(words) and all(w in said for w in words)
