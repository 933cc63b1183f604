"""Issue 9: understanding measured on callers, with a simulated caller who answers what the
receptionist asks from a persona's facts, as typed and as ASR text; and the figures, including the
held-back personas (tests/data/heldback/), which were written before the rules and never tuned on."""

from __future__ import annotations

import pytest

from tests.caller import (
    FORMS,
    Persona,
    all_personas,
    figures,
    fixed_scenarios,
    format_figures,
    heldback,
    run_all,
    run_persona,
)

PERSONAS = all_personas()
TARGET = 0.95
"""Fields and action right in at least this share of the calls (typed and ASR); critical recall 100%."""
HELD_BACK_FLOOR = {"critical_missed": 0, "action": 0.93}
"""The held-back set (tests/data/heldback/personas-6.yaml and -7): every critical call put through, the
action right in at least 93% of the calls (measured 68/73); a change that does worse fails. It was
95% (70/73) until the learned layer's thresholds were lowered for callers written outside the
project (urgency.SURE 0.75 -> 0.65: outside critical calls taken at once 84 -> 90% typed, 80 -> 89%
as ASR text, false critical 3.8 -> 4.5%): our own writer labels four calls "urgent" that the model
now puts through (a sizzling fuse box, a tile fallen on the pavement with others loose, a retaining
wall fallen on the neighbours' path, a ball through a bedroom window)."""


def test_the_corpus_has_at_least_two_hundred_calls_and_a_held_back_fifth() -> None:
    held = heldback()
    assert len(PERSONAS) + len(held) + len(fixed_scenarios()) >= 200
    assert len(held) * 5 >= len(held) + len(PERSONAS)
    assert not {p.id for p in held} & {p.id for p in PERSONAS}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("persona", PERSONAS, ids=[p.id for p in PERSONAS])
def test_persona(persona: Persona, form: str) -> None:
    out = run_persona(persona, form)
    assert not out.wrong, f"{persona.id} ({form}): {out.wrong}\nsaid: {out.said}\nreplies: {out.replies}"


@pytest.mark.parametrize("form", FORMS)
def test_figures_on_the_held_back_personas(form: str) -> None:
    """The held-back fifth: scored as a whole (its calls are not looked at one by one while tuning)."""
    fig = figures(run_all(heldback(), [], form))
    print("\n" + format_figures(f"held-back personas, {form}", fig))
    found, total = fig["critical_recall"]
    assert total - found <= HELD_BACK_FLOOR["critical_missed"], f"critical calls not put through: {total - found}"
    right, checked = fig["fields"]
    assert right >= TARGET * checked, f"fields: {right}/{checked} below {TARGET:.0%}"
    right, checked = fig["action"]
    assert right >= HELD_BACK_FLOOR["action"] * checked, f"action: {right}/{checked}"


@pytest.mark.parametrize("form", FORMS)
def test_figures_on_the_project_calls(form: str) -> None:
    fig = figures(run_all(PERSONAS, fixed_scenarios(), form))
    print("\n" + format_figures(f"scenarios and personas, {form}", fig))
    assert fig["critical_recall"][0] == fig["critical_recall"][1]
    for key in ("fields", "action", "urgency"):
        right, checked = fig[key]
        assert right >= TARGET * checked, f"{key}: {right}/{checked} below {TARGET:.0%}"
