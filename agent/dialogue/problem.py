"""What the caller's problem is, in their own words: a short summary of what they said, labelled
with the trade's typical problem when one is named (the label never replaces the words)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from agent.dialogue.dialplan import Dialplan
from agent.dialogue.names import introduced
from agent.dialogue.places import address
from agent.dialogue.profiles import shared_rules
from agent.dialogue.text import PHRASE_STOP, Phrase, phone_number, stems_of


class Said(Protocol):
    """What the problem is read from: an utterance as `heard.Heard` holds it."""

    @property
    def text(self) -> str: ...
    @property
    def tokens(self) -> tuple[str, ...]: ...
    @property
    def stems(self) -> tuple[str, ...]: ...


MAX_WORDS: Final = 18
"""A summary fits in the artisan's SMS and the whisper."""
MAX_SCAN: Final = 100
"""Words of one long clause searched for where the problem starts: a caller's utterance is cut at
30 s, about 100 words (a hostile 2,000-word text took 0.8 s without this bound)."""
LEAD_IN: Final = re.compile(
    r"^(?:\s*(?:oui|allô|allo|bonjour|bonsoir|madame|monsieur|euh|alors|voilà|voila|écoutez|ecoutez|"
    r"excusez[- ]moi(?: de vous déranger)?|pardon|je vous remercie de prendre mon appel|merci|"
    r"je vous appelle (?:parce que|car|pour|de la part de \w+ \w+)|j'appelle (?:parce que|pour)|"
    r"c'est pour|en fait|ben|bah|hum|aidez[- ]moi|au secours)\b[\s,.!:;]*)+", re.IGNORECASE)


@dataclass(frozen=True)
class TradeWords:
    problems: tuple[tuple[str, tuple[Phrase, ...]], ...]
    content: tuple[Phrase, ...]
    """Every phrase that says what is wrong: problems, vocabulary, emergency words."""


_CACHE: dict[tuple[str, str], TradeWords] = {}


def trade_words(plan: Dialplan) -> TradeWords:
    key = (plan.file, plan.trade.trade)
    if key not in _CACHE:
        content = [p for prob in plan.trade.problems for p in prob.words]
        content += [Phrase.of(v) for v in plan.trade.vocabulary]
        content += [p for t in plan.triggers for group in t.all for p in group]
        rules = shared_rules()
        content += [*rules.without_heat, *rules.without_essentials]
        _CACHE[key] = TradeWords(tuple((p.label, p.words) for p in plan.trade.problems), tuple(content))
    return _CACHE[key]


def label(plan: Dialplan, h: Said) -> str | None:
    """The trade's typical problem named first in what was said."""
    best: tuple[int, str] | None = None
    for name, phrases in trade_words(plan).problems:
        for p in phrases:
            at = p.find(list(h.stems), list(h.tokens))
            if at is not None and (best is None or at < best[0]):
                best = (at, name)
    return best[1] if best else None


def says_problem(plan: Dialplan, text: str) -> bool:
    return says_problem_in(plan, *stems_of(text))


def says_problem_in(plan: Dialplan, stems: Sequence[str], folded: Sequence[str]) -> bool:
    """`says_problem` on words already lemmatised (an utterance's `Heard.stems` and `.tokens`)."""
    stems, folded = list(stems), list(folded)
    return any(p.find(stems, folded) is not None for p in trade_words(plan).content)


def summary(plan: Dialplan, h: Said, *, asked: bool) -> str | None:
    """The caller's own words about the problem: the clauses that say what is wrong (greetings,
    names, addresses and numbers left out), or the whole answer when the problem was asked for."""
    clauses = [c for c in re.split(r"[,.;!?]\s+|[.;!?]$", h.text) if c.strip()]
    kept: list[str] = []
    for clause in clauses:
        if _identity(clause):
            if kept:
                break
            continue
        body = LEAD_IN.sub("", clause).strip(" ,.;!?")
        if body and (kept or asked or says_problem(plan, body) or len(body.split()) >= 4):
            kept.append(body)
    text = ", ".join(kept)
    if len(clauses) == 1 and _identity(h.text):
        text = LEAD_IN.sub("", _from_problem_word(plan, h.text))
    ws = text.strip(" ,.;!?").split()
    if not ws or (len(ws) < 2 and not asked):
        return None
    text = " ".join(ws[:MAX_WORDS]).rstrip(" ,.;")
    return text[:1].upper() + text[1:]


def _identity(clause: str) -> bool:
    """The clause gives an address, a number or introduces the caller (not the problem)."""
    return address(clause) is not None or phone_number(clause) is not None or introduced(clause) is not None


def _from_problem_word(plan: Dialplan, text: str) -> str:
    """One long clause (ASR text): from a couple of words before the first word saying what is wrong."""
    tokens = list(re.finditer(r"\S+", text))
    head = text[:tokens[min(len(tokens), MAX_SCAN) - 1].end()] if tokens else text
    if not says_problem(plan, head):  # no problem word at all: the loop below would find none
        return text
    for i in range(min(len(tokens), MAX_SCAN)):
        stems, folded = stems_of(" ".join(t.group(0) for t in tokens[i:i + 6]))
        if any(p.find(stems, folded) == 0 for p in trade_words(plan).content):
            return text[tokens[max(0, i - 2)].start():]
    return text


def describe(plan: Dialplan, h: Said, *, asked: bool) -> str | None:
    """The problem as stored: "label : the caller's words", or the words alone."""
    words_ = summary(plan, h, asked=asked)
    name = label(plan, h)
    if words_ is None:
        return name
    if name is None or covers(words_, name):
        return words_
    return f"{name} : {words_}"


def covers(text: str, label_: str) -> bool:
    """The caller's words already say the label ("une fuite d'eau" for "fuite d'eau")."""
    said = set(stems_of(text)[0])
    wanted = [s for s, f in zip(*stems_of(label_), strict=True) if f not in PHRASE_STOP]
    return all(s in said for s in wanted)
