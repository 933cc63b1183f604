"""How urgent a call is, from everything the caller said: the trade's triggers, the triggers every
trade shares, who is at home in which season, and the learned layer (severity.py).

The rule is "when in doubt, ask; never downgrade what was said": a check answer can raise a
trigger's severity but never lower it below what the words alone gave, and a caller who already
said a vulnerable person is at home is not asked whether there is one.

Rules and model together: the model takes a call as critical at once when it is sure (`SURE`,
or `AT_ONCE` with a rule's critical trigger); a rule's critical trigger stands when it fires on
words said of here and now (scope.py) and the model does not find the words harmless (`CONFIRM`);
in between, the caller is asked one targeted question about the hazard named (`ASK`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Final

from agent.dialogue.dialplan import Dialplan
from agent.dialogue.heard import Heard
from agent.dialogue.profiles import Trigger, shared_rules
from agent.dialogue.severity import Reading, SeverityModel
from agent.dialogue.state import Hazard, Severity
from agent.dialogue.text import Phrase

Words = tuple[tuple[str, ...], tuple[str, ...]]
"""One utterance as (stems, folded words)."""


@dataclass(frozen=True)
class Said:
    """Everything the caller said so far, utterance by utterance: a trigger's words are found
    within one utterance (an address given later is not where an emergency happens)."""

    utterances: tuple[Words, ...]

    @staticmethod
    def of(heard: Sequence[Heard]) -> Said:
        return Said(tuple((h.stems, h.tokens) for h in heard))

    def any(self, phrases: Sequence[Phrase]) -> bool:
        return any(_found(p, u) for u in self.utterances for p in phrases)

    def now(self, phrases: Sequence[Phrase]) -> bool:
        """Said of the present, not of when something happens ("quand il fait froid, ça craque")."""
        return any(not HABITUAL & set(u[1][max(0, at - 3):at])
                   for u in self.utterances for p in phrases for at in _positions(p, u))


HABITUAL: Final = frozenset({"quand", "lorsque", "lorsqu", "chaque", "si", "des"})
"""Words that put what follows in a condition or a habit."""


def fires(trig: Trigger, said: Said) -> bool:
    """Every group of the trigger is said within its window of the others in one utterance, and no
    `unless` phrase anywhere in the call."""
    if trig.unless and said.any(trig.unless):
        return False
    return any(_fires_in(trig, u) for u in said.utterances)


@lru_cache(maxsize=65536)
def _fires_in(trig: Trigger, words: Words) -> bool:
    spots = [sorted(p for phrase in group for p in _positions(phrase, words)) for group in trig.all]
    if not all(spots):
        return False
    return any(all(any(abs(q - p) <= trig.window for q in other) for other in spots[1:]) for p in spots[0])


@lru_cache(maxsize=262144)
def _found(phrase: Phrase, words: Words) -> bool:
    return phrase.find(list(words[0]), list(words[1])) is not None


def _positions(phrase: Phrase, words: Words) -> list[int]:
    stems, folded = list(words[0]), list(words[1])
    out = []
    start = 0
    while start < len(stems):
        at = phrase.find(stems[start:], folded[start:])
        if at is None:
            break
        out.append(start + at)
        start += at + 1
    return out


@dataclass(frozen=True)
class Assessment:
    severity: Severity
    fired: tuple[Trigger, ...]
    vulnerable: bool
    """Someone vulnerable (baby, elderly, ill, disabled, pregnant) is concerned."""
    reason: str
    """Which rule gave the severity (for the trace: never a caller's words)."""
    doubtful: bool = False
    """Words of possible danger were said, or someone vulnerable is concerned: if no emergency was
    recognised, the caller is asked once about an immediate danger."""
    hazard: Hazard | None = None
    """The hazard to ask one targeted question about (the call may be critical, not surely)."""
    advised: tuple[Trigger, ...] = ()
    """The fired triggers that make the call critical (their advice is said before the transfer)."""
    learned: float | None = None
    """The learned layer's highest probability of a critical call over the utterances (None: rules alone)."""
    learned_hazard: Hazard | None = None
    """The hazard of a call the learned layer takes as critical (its safety advice)."""


DANGER: Final = "danger"
"""The key of the danger question's answer in `checks` (generic, or targeted at a hazard)."""
AT_ONCE: Final = 0.45
"""The learned layer's probability of a critical call from which it is taken as critical at once,
when a rule's critical trigger fired too."""
SURE: Final = 0.65
"""...and from which it is taken as critical at once on the model's word alone. Chosen across
writers among (0.75, 0.5), (0.65, 0.45), (0.55, 0.4) for (SURE, AT_ONCE): outside critical calls
taken at once 84/90/94% typed, 80/89/91% as ASR text, false critical 4/4.5/6.5% (goal <= 5%),
look-alikes 6/7/10%; the lowest pair within the false-critical goal."""
CONFIRM: Final = 0.2
"""A rule's critical trigger stands when the learned layer gives the call at least this."""
ASK: Final = 0.3
"""From this probability of a critical call, the caller is asked about the hazard."""


def assess(plan: Dialplan, now: datetime, heard: Sequence[Heard], checks: dict[str, Severity]) -> Assessment:
    rules = shared_rules()
    said = Said.of(heard)
    in_scope = Said(tuple(h.in_scope for h in heard))
    fired = tuple(t for t in plan.triggers if fires(t, said))
    vulnerable = vulnerable_in(heard)
    cold = now.month in rules.cold_months
    readings = [h.reading for h in heard if h.reading is not None]
    best = max(readings, key=lambda r: r.critical, default=None)
    p = best.critical if best is not None else None
    levels: list[tuple[Severity, str]] = []
    advised: list[Trigger] = []
    learned_hazard = None
    in_question = False

    def the_hazard(best: Reading) -> Hazard:
        """The hazard the words name, else the model's guess."""
        return named_hazard([h for h in heard if h.reading is not None]) or best.hazard

    for t in fired:
        sev = severity_of(t, now, checks, vulnerable)
        if sev is Severity.CRITICAL and t.id not in checks and (
                not fires(t, in_scope) or (p is not None and p < CONFIRM)):
            # Said of the past, of fear, of someone else... or words the model finds harmless: ask.
            in_question = True
            sev = Severity.URGENT if t.severity is Severity.URGENT else Severity.NORMAL
        if sev is Severity.CRITICAL:
            advised.append(t)
        levels.append((sev, t.id))
    support = any(sev is Severity.CRITICAL for sev, _ in levels)
    if best is not None and p is not None:
        if best.in_scope and (p >= SURE or (p >= AT_ONCE and support)):
            learned_hazard = the_hazard(best)
            levels.append((Severity.CRITICAL, f"learned-{learned_hazard}"))
        elif any(r.needs_visit_soon for r in readings):
            levels.append((Severity.URGENT, "learned-urgent"))
    one_appliance = said.any(rules.one_appliance)
    without_heat = (said.now(rules.without_heat) or fires(rules.heating_failure, said)
                    or any(d <= 16 for h in heard for d in h.degrees))
    without_essentials = said.now(rules.without_essentials) and not one_appliance
    if cold and (without_heat or without_essentials):
        levels.append((Severity.CRITICAL if vulnerable else Severity.URGENT, "cold-home"))
    elif without_essentials:
        levels.append((Severity.URGENT, "no-essentials"))
    if checks.get(DANGER) is Severity.CRITICAL:
        levels.append((Severity.CRITICAL, "danger-confirmed"))
    severity, reason = max(levels, key=lambda lv: lv[0].rank, default=(Severity.NORMAL, ""))
    hazard = None
    if best is not None and p is not None and severity is not Severity.CRITICAL and (p >= ASK or in_question):
        hazard = the_hazard(best)
    # Words of possible danger, or someone vulnerable concerned: when in doubt, ask.
    doubt = in_question or vulnerable or said.any(rules.doubt)
    return Assessment(severity, fired, vulnerable, reason, doubtful=doubt, hazard=hazard, advised=tuple(advised),
                      learned=p, learned_hazard=learned_hazard if severity is Severity.CRITICAL else None)


HAZARD_ORDER: Final = (Hazard.GAS, Hazard.CO, Hazard.ELECTRIC_WATER, Hazard.FIRE, Hazard.ELECTRIC, Hazard.SEWAGE,
                       Hazard.WATER, Hazard.STRUCTURE, Hazard.SECURITY, Hazard.PERSON)
"""When the words name several hazards, the question is about the first of them: the most specific
and serious first, a person last (someone vulnerable is mentioned in many calls about something else)."""


def vulnerable_in(heard: Sequence[Heard]) -> bool:
    """Someone vulnerable is named: a baby, an elderly or ill person, an age of 75 and over..."""
    rules = shared_rules()
    return (Said.of(heard).any(rules.vulnerable) or any(h.small_child for h in heard)
            or any(a >= rules.vulnerable_age for h in heard for a in h.ages))


def named_hazard(heard: Sequence[Heard]) -> Hazard | None:
    """The hazard the caller's words name (profiles/_shared.yaml `hazards`), in what they said of
    here and now; None when they name none."""
    said = Said(tuple(h.in_scope for h in heard))
    named = {hz for hz, trig in shared_rules().hazards if fires(trig, said)}
    return next((hz for hz in HAZARD_ORDER if hz in named), None)


def read(reader: SeverityModel, h: Heard) -> Reading:
    """The learned layer's reading of one utterance. Where clauses speak of something else than a
    danger here and now (scope.py), the lower of the readings with and without them: "GRDF a mis
    les scellés" does not make a call critical."""
    full = reader.read(h.text)
    if not h.scopes:
        return full
    if not h.scoped.strip():
        return replace(full, in_scope=False)
    part = reader.read(h.scoped)
    return part if part.critical < full.critical else full


def severity_of(trig: Trigger, now: datetime, checks: dict[str, Severity], vulnerable: bool) -> Severity:
    if trig.months and now.month not in trig.months:
        return trig.otherwise
    base = trig.severity
    if trig.check is not None and trig.check.about_vulnerable and vulnerable:
        return _higher(base, trig.check.if_yes)
    if trig.id in checks:
        return _higher(base, checks[trig.id])
    return base


def _higher(a: Severity, b: Severity) -> Severity:
    return a if a.rank >= b.rank else b


def doubtful(assessment: Assessment, now: datetime, checks: dict[str, Severity]) -> Trigger | None:
    """A fired trigger whose check question is still to be asked (and could change the severity)."""
    for trig in assessment.fired:
        chk = trig.check
        if chk is None or trig.id in checks or (trig.months and now.month not in trig.months):
            continue
        if chk.about_vulnerable and assessment.vulnerable:
            continue
        if assessment.severity is Severity.CRITICAL:
            continue
        return trig
    return None
