"""The answer to a targeted safety question (issue 21), understood broadly: a yes or a no for the
question's polarity, a danger the answer itself describes, someone vulnerable named (for the
question about people); anything else unclear counts as the danger (safety first), except an
answer that is plainly to another question (a name, an address, a number)."""

from __future__ import annotations

from agent.dialogue.heard import Heard
from agent.dialogue.phrases import SafetyQuestion
from agent.dialogue.text import fold
from agent.dialogue.urgency import SURE, vulnerable_in


def means_danger(h: Heard, question: SafetyQuestion, about_people: bool) -> bool:
    if h.reading is not None and h.reading.in_scope and h.reading.critical >= SURE:
        return True
    if about_people and vulnerable_in([h]):
        return True
    if h.yes is not None:
        return h.yes is question.danger_if_yes
    # A name, an address or a number is no answer (the caller went on with what they expected to
    # be asked): the question is not asked again. Anything else unclear is the danger.
    return not (h.introduced_name or h.address or h.phone or starts_with_a_name(h))


def starts_with_a_name(h: Heard) -> bool:
    """The utterance opens with a first name and a surname ("Lebrun, Gaston Lebrun, j'ai 81 ans")."""
    parts = (h.name or "").split()
    return len(parts) >= 2 and all(fold(w) in h.tokens[:4] for w in parts)
