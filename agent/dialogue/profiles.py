"""Trade profiles (agent/dialogue/profiles/<trade>.yaml) and the rules every trade shares
(profiles/_shared.yaml): vocabulary, typical problems, emergency triggers, vulnerability and season.

A dialplan names its trade; dialplan.py reads the dialplan and takes the trade's profile from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

from agent.dialogue.state import Hazard, Severity
from agent.dialogue.text import Phrase
from agent.yamlnode import Node, read_yaml

PROFILES_DIR: Final = Path(__file__).parent / "profiles"
SEVERITIES: Final = tuple(s.value for s in reversed(Severity))


@dataclass(frozen=True)
class Check:
    question: str
    if_yes: Severity
    if_no: Severity
    if_unknown: Severity
    about_vulnerable: bool = False
    """The question asks whether someone vulnerable is there: a caller who already said so is not asked."""


@dataclass(frozen=True)
class Trigger:
    id: str
    severity: Severity
    all: tuple[tuple[Phrase, ...], ...]
    """Groups of phrases: every group must match (one phrase of it), within `window` words of each
    other, for the trigger to fire. Phrases match on lemmas, in any order, not under a negation."""
    check: Check | None = None
    advice: str | None = None
    months: tuple[int, ...] = ()
    """When set, `severity` applies in these months only, `otherwise` in the others."""
    otherwise: Severity = Severity.NORMAL
    unless: tuple[Phrase, ...] = ()
    """Phrases that mean it is not this emergency ("quand je branche le grille-pain")."""
    window: int = 12


@dataclass(frozen=True)
class Problem:
    label: str
    words: tuple[Phrase, ...]


@dataclass(frozen=True)
class TradeProfile:
    trade: str
    label: str
    basket_eur: int
    vocabulary: tuple[str, ...]
    problems: tuple[Problem, ...]
    emergencies: tuple[Trigger, ...]
    request_words: tuple[str, ...] = ()


def phrases_at(node: Node, key: str, *, required: bool = True) -> tuple[str, ...]:
    value = node.raw(key)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise node.error(key, "a non-empty list of words or phrases", value)
    return tuple(value)


def _groups(node: Node, key: str) -> tuple[tuple[Phrase, ...], ...]:
    value = node.raw(key)
    if (not isinstance(value, list) or not value
            or not all(isinstance(g, list) and g and all(isinstance(w, str) and w.strip() for w in g) for g in value)):
        raise node.error(key, "a list of groups, each a non-empty list of phrases ([[fuite, coule], [partout]])",
                         value)
    return tuple(tuple(Phrase.of(w) for w in g) for g in value)


def _severity(node: Node, key: str, default: str) -> Severity:
    return Severity(node.choice(key, default, SEVERITIES))


def parse_trigger(node: Node) -> Trigger:
    check = None
    if node.has("check"):
        c = node.node("check")
        check = Check(question=c.text("question", required=True),
                      if_yes=_severity(c, "if_yes", "urgent"), if_no=_severity(c, "if_no", "urgent"),
                      if_unknown=_severity(c, "if_unknown", "urgent"),
                      about_vulnerable=c.choice("about", "", ("", "vulnerable")) == "vulnerable")
        c.close()
    months = node.raw("months") or []
    if not isinstance(months, list) or not all(isinstance(m, int) and 1 <= m <= 12 for m in months):
        raise node.error("months", "a list of month numbers 1-12", months)
    unless = tuple(Phrase.of(w) for w in phrases_at(node, "unless", required=False))
    trig = Trigger(id=node.text("id", required=True), severity=_severity(node, "severity", ""),
                   all=_groups(node, "all"), check=check, advice=node.opt_str("advice"), months=tuple(months),
                   otherwise=_severity(node, "otherwise", "normal"), unless=unless,
                   window=node.integer("window", 12, lo=2, hi=60))
    node.close()
    return trig


def load_profile(trade: str) -> TradeProfile:
    path = PROFILES_DIR / f"{trade}.yaml"
    node = Node(str(path), "", read_yaml(path))
    problems = []
    for i, raw in enumerate(node.raw("problems") or []):
        p = Node(str(path), f"problems[{i}]", raw)
        problems.append(Problem(p.text("label", required=True), tuple(Phrase.of(w) for w in phrases_at(p, "words"))))
        p.close()
    triggers = tuple(parse_trigger(Node(str(path), f"emergencies[{i}]", raw))
                     for i, raw in enumerate(node.raw("emergencies") or []))
    profile = TradeProfile(trade=node.text("trade", required=True), label=node.text("label", required=True),
                           basket_eur=node.integer("basket_eur", 0, lo=1, hi=100000),
                           vocabulary=phrases_at(node, "vocabulary"), problems=tuple(problems), emergencies=triggers,
                           request_words=phrases_at(node, "request_words", required=False))
    node.close()
    return profile


@dataclass(frozen=True)
class SharedRules:
    """What every trade shares (profiles/_shared.yaml): emergencies described by their effects, and
    who is vulnerable and what a home must not be left without in the cold season."""

    emergencies: tuple[Trigger, ...]
    vulnerable: tuple[Phrase, ...]
    without_heat: tuple[Phrase, ...]
    heating_failure: Trigger
    """A heating appliance said with what is wrong with it: the home is without heating too."""
    without_essentials: tuple[Phrase, ...]
    one_appliance: tuple[Phrase, ...]
    doubt: tuple[Phrase, ...]
    """Words that make a call doubtful: the caller is asked once about an immediate danger."""
    cold_months: tuple[int, ...]
    vulnerable_age: int
    hazards: tuple[tuple[Hazard, Trigger], ...] = ()
    """Words that name each hazard: which one a targeted safety question is about."""
    """An age said ("elle a 91 ans") at or above this makes a person vulnerable."""


@lru_cache(maxsize=1)
def shared_rules() -> SharedRules:
    path = PROFILES_DIR / "_shared.yaml"
    node = Node(str(path), "", read_yaml(path))
    triggers = tuple(parse_trigger(Node(str(path), f"emergencies[{i}]", raw))
                     for i, raw in enumerate(node.raw("emergencies") or []))

    def phrases(key: str) -> tuple[Phrase, ...]:
        return tuple(Phrase.of(w) for w in phrases_at(node, key))

    hazards = []
    for i, raw in enumerate(node.raw("hazards") or []):
        h = Node(str(path), f"hazards[{i}]", raw)
        hazard = Hazard(h.choice("hazard", "", tuple(x.value for x in Hazard)))
        hazards.append((hazard, Trigger(id=f"hazard-{hazard}", severity=Severity.NORMAL, all=_groups(h, "all"),
                                        window=h.integer("window", 12, lo=2, hi=60))))
        h.close()
    failure = node.node("heating_failure")
    heating_failure = Trigger(id="heating-failure", severity=Severity.URGENT, all=_groups(failure, "all"),
                              window=failure.integer("window", 8, lo=2, hi=60))
    failure.close()
    rules = SharedRules(triggers, phrases("vulnerable"), phrases("without_heat"), heating_failure,
                        phrases("without_essentials"),
                        phrases("one_appliance"), phrases("doubt"), tuple(node.raw("cold_months") or ()),
                        node.integer("vulnerable_age", 75, lo=50, hi=100), tuple(hazards))
    node.close()
    return rules
