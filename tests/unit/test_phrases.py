"""Every sentence the receptionist says comes from `dialogue/phrases.py` (or the dialplan): either a
fixed sentence, rendered ahead of time and played with no synthesis delay, or one of its templates
holding the caller's data (a slot, a name, a town). Checked on every written scenario and persona,
typed and as the recogniser prints. And every reply opens with a fixed sentence: its first sound is
never waiting for the voice (issue 22: a slot's offer or its booking synthesised whole to its first
audio cost 116-208 ms of every turn it answered)."""

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


def _unheld_openings(plan: Dialplan, replies: list[str]) -> list[str]:
    """The replies whose first sentence is not rendered ahead of time."""
    fixed = _fixed(plan)
    return [r for r in replies if r and sentences(r)[0] not in fixed]


@pytest.mark.parametrize("form", FORMS)
def test_every_sentence_said_is_a_phrase(form: str) -> None:
    said = replies = 0
    stray: dict[str, list[str]] = {}
    unheld: dict[str, list[str]] = {}
    calls = [(sid, sc.dialplan, run_scenario(sid, sc, form)) for sid, sc in fixed_scenarios()]
    calls += [(p.id, p.plan, run_persona(p, form)) for p in all_personas()]
    for cid, plan, out in calls:
        said += sum(len(sentences(r)) for r in out.replies)
        replies += len(out.replies)
        if bad := _stray(plan, out.replies):
            stray[cid] = bad
        if late := _unheld_openings(plan, out.replies[1:]):  # the greeting is rendered before calls
            unheld[cid] = late
    assert said > 1000 and replies > 300
    assert not stray, f"sentences not in phrases.py or the dialplan: {stray}"
    assert not unheld, f"replies whose first sentence waits for the voice: {unheld}"


def test_caller_templates_open_with_a_fixed_sentence() -> None:
    """A template with the caller's data opens with a sentence without it ("Je peux vous proposer un
    passage :"), which the phrase book holds: it plays at once while the rest is synthesised."""
    never_first = {"WHISPER": "said to the artisan who picked up, not in a caller's turn",
                   "UPCOMING": "said after the greeting (returning.greeting)"}
    found = {k: v for k, v in vars(phrases).items() if k.isupper() and isinstance(v, str) and "{" in v}
    assert len(found) >= 8 and set(never_first) <= set(found)
    opening_with_data = [k for k, v in found.items()
                         if k not in never_first and phrases.FIELD.search(sentences(v)[0])]
    assert not opening_with_data


def test_a_sentence_made_up_is_caught() -> None:
    """The check itself: a sentence outside phrases.py is reported."""
    plan = fixed_scenarios()[0][1].dialplan
    made_up = "Voici une phrase écrite ailleurs."
    assert _stray(plan, [f"{phrases.GOODBYE} {made_up}"]) == [made_up]
    assert _stray(plan, [phrases.BOOKED.format(slot="jeudi 3 décembre à 8 h")]) == []
    assert _unheld_openings(plan, [f"Vous êtes bien chez nous. {phrases.GOODBYE}"]) != []
    assert _unheld_openings(plan, [phrases.BOOKED.format(slot="jeudi 3 décembre à 8 h")]) == []
