"""Every sentence the receptionist says comes from `dialogue/phrases.py` (or the dialplan): either a
fixed sentence, rendered ahead of time and played with no synthesis delay, or one of its templates
holding the caller's data (a slot, a name, a town). Checked on every written scenario and persona,
typed and as the recogniser prints."""

from __future__ import annotations

import re

import pytest

from agent.dialogue import phrases
from agent.dialogue.dialplan import Dialplan
from agent.tts.base import sentences
from tests.caller import FORMS, all_personas, fixed_scenarios, run_persona, run_scenario

_FIXED: dict[str, frozenset[str]] = {}


def _fixed(plan: Dialplan) -> frozenset[str]:
    if plan.file not in _FIXED:
        _FIXED[plan.file] = frozenset(s for text in phrases.fixed_texts(plan) for s in sentences(text))
    return _FIXED[plan.file]


def _pattern(template: str) -> str:
    return re.sub(r"\\\{\w+\\\}", ".+", re.escape(template))


def _templates() -> list[re.Pattern[str]]:
    """Each template whole (its fields as wildcards, possibly over several sentences: the recap's
    items follow "Je récapitule :"); the urgent lead may open an offer."""
    found = [v for k, v in vars(phrases).items() if k.isupper() and isinstance(v, str) and "{" in v]
    found += [phrases.URGENT_LEAD + o for o in (phrases.OFFER_ONE, phrases.OFFER_MANY)]
    return [re.compile(_pattern(t.strip())) for t in found]


TEMPLATES = _templates()


def _stray(plan: Dialplan, replies: list[str]) -> list[str]:
    """The sentences of the replies that are neither a fixed sentence nor part of a template."""
    fixed = _fixed(plan)
    stray = []
    for reply in replies:
        said = sentences(reply)
        i = 0
        while i < len(said):
            # A template first: its sentences without a field ("Je récapitule :") are fixed too.
            span = next((j for j in range(min(len(said), i + 4), i, -1)
                         if any(t.fullmatch(" ".join(said[i:j])) for t in TEMPLATES)), None)
            if span is not None:
                i = span
                continue
            if said[i] not in fixed:
                stray.append(said[i])
            i += 1
    return stray


@pytest.mark.parametrize("form", FORMS)
def test_every_sentence_said_is_a_phrase(form: str) -> None:
    said = 0
    stray: dict[str, list[str]] = {}
    for sid, sc in fixed_scenarios():
        out = run_scenario(sid, sc, form)
        said += sum(len(sentences(r)) for r in out.replies)
        if bad := _stray(sc.dialplan, out.replies):
            stray[sid] = bad
    for p in all_personas():
        out = run_persona(p, form)
        said += sum(len(sentences(r)) for r in out.replies)
        if bad := _stray(p.plan, out.replies):
            stray[p.id] = bad
    assert said > 1000
    assert not stray, f"sentences not in phrases.py or the dialplan: {stray}"


def test_a_sentence_made_up_is_caught() -> None:
    """The check itself: a sentence outside phrases.py is reported."""
    plan = fixed_scenarios()[0][1].dialplan
    made_up = "Voici une phrase écrite ailleurs."
    assert _stray(plan, [f"{phrases.GOODBYE} {made_up}"]) == [made_up]
    assert _stray(plan, [phrases.BOOKED.format(slot="jeudi 3 décembre à 8 h")]) == []
