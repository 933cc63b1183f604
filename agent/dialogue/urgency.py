"""How urgent a call is, from everything the caller said: the trade's triggers, the triggers every
trade shares, and who is at home in which season.

The rule is "when in doubt, ask; never downgrade what was said": a check answer can raise a
trigger's severity but never lower it below what the words alone gave, and a caller who already
said a vulnerable person is at home is not asked whether there is one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Final

from agent.dialogue.heard import Heard
from agent.dialogue.profiles import Trigger, shared_rules
from agent.dialogue.schema import Dialplan
from agent.dialogue.state import Severity
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


DANGER: Final = "danger"
"""The key of the generic danger question's answer in `checks`."""


def assess(plan: Dialplan, now: datetime, heard: Sequence[Heard], checks: dict[str, Severity]) -> Assessment:
    rules = shared_rules()
    said = Said.of(heard)
    fired = tuple(t for t in plan.triggers if fires(t, said))
    vulnerable = said.any(rules.vulnerable) or any(
        a >= rules.vulnerable_age for h in heard for a in h.ages) or any(h.small_child for h in heard)
    cold = now.month in rules.cold_months
    levels: list[tuple[Severity, str]] = [(severity_of(t, now, checks, vulnerable), t.id) for t in fired]
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
    # Words of possible danger, or someone vulnerable concerned: when in doubt, ask.
    return Assessment(severity, fired, vulnerable, reason, doubtful=vulnerable or said.any(rules.doubt))


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
