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
from typing import Final

from agent.dialogue.heard import Heard
from agent.dialogue.profiles import Trigger, shared_rules
from agent.dialogue.schema import Dialplan
from agent.dialogue.state import Severity
from agent.dialogue.text import Phrase

GAP = 64
"""Filler put between two utterances, wider than any trigger's window."""


@dataclass(frozen=True)
class Said:
    """Everything the caller said so far, as one stream of stems and folded words."""

    stems: list[str]
    folded: list[str]

    @staticmethod
    def of(heard: Sequence[Heard]) -> Said:
        stems: list[str] = []
        folded: list[str] = []
        for h in heard:
            if stems:  # utterances apart: a trigger's words are found within one utterance
                stems += ["|"] * GAP
                folded += ["|"] * GAP
            stems += h.stems
            folded += h.tokens
        return Said(stems, folded)

    def positions(self, phrase: Phrase) -> list[int]:
        out = []
        start = 0
        while start < len(self.stems):
            at = phrase.find(self.stems[start:], self.folded[start:])
            if at is None:
                break
            out.append(start + at)
            start += at + 1
        return out

    def any(self, phrases: Sequence[Phrase]) -> bool:
        return any(p.find(self.stems, self.folded) is not None for p in phrases)


def fires(trig: Trigger, said: Said) -> bool:
    """Every group of the trigger is said within its window of the others, and no `unless` phrase."""
    if trig.unless and said.any(trig.unless):
        return False
    spots = [sorted(p for phrase in group for p in said.positions(phrase)) for group in trig.all]
    if not all(spots):
        return False
    return any(all(any(abs(q - p) <= trig.window for q in other) for other in spots[1:]) for p in spots[0])


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
    without_heat = said.any(rules.without_heat) or any(d <= 16 for h in heard for d in h.degrees)
    without_essentials = said.any(rules.without_essentials) and not one_appliance
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
