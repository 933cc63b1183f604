"""Issue 5: the conversation, on written scenarios across the eight trades, plus malformed dialplans."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.dialogue.simulate import Scenario
from tests.caller import FORMS, fixed_scenarios, run_scenario

SCENARIOS = Path(__file__).parents[1] / "data" / "scenarios"
CASES = fixed_scenarios()


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("sid", "scenario"), CASES, ids=[s for s, _ in CASES])
def test_scenario(sid: str, scenario: Scenario, form: str) -> None:
    """Each written scenario, as typed and as an ASR prints it (lower case, no punctuation, numbers
    as words)."""
    out = run_scenario(sid, scenario, form)
    assert not out.wrong, f"{sid} ({form}): {out.wrong}\nsaid: {out.said}\nreplies: {out.replies}"


def test_there_are_enough_scenarios() -> None:
    assert len(CASES) >= 60


# --- the LLM is asked only for what rules missed ---------------------------------------------------
import asyncio  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from datetime import datetime  # noqa: E402

from agent.dialogue.dialplan import builtin_dialplan  # noqa: E402
from agent.dialogue.policy import Conversation  # noqa: E402
from agent.llm.base import Extraction  # noqa: E402
from tests.conftest import REPO  # noqa: E402

NOW = datetime.fromisoformat("2026-11-26T14:05:00+01:00")


class ScriptedExtractor:
    """Fake LLM with fixed answers and a call log (the real one is tested in test_engines.py)."""

    name = "scripted"

    def __init__(self, answers: dict[str, str | None]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    async def extract(self, text: str, fields: Sequence[str], budget_s: float = 1.0) -> Extraction:
        self.calls.append((text, tuple(fields)))
        return Extraction({f: self.answers.get(f) for f in fields}, complete=True)


async def converse(conv: Conversation, turns: list[str]) -> list[str]:
    out = [conv.start()]
    for t in turns:
        out.append(await conv.turn(t))
    return out


def test_the_llm_fills_only_what_rules_missed() -> None:
    llm = ScriptedExtractor({"name": "Madame Blanc"})
    conv = Conversation(builtin_dialplan("plombier"), NOW, "+33612345678", extractor=llm)
    asyncio.run(converse(conv, ["Mon évier est bouché", "Je suis la voisine de Madame Blanc"]))
    assert llm.calls == [("Je suis la voisine de Madame Blanc", ("name",))]
    assert conv.lead.name == "Madame Blanc"
    # Where rules understood, the LLM is not asked at all.
    llm2 = ScriptedExtractor({"name": "Quelqu'un"})
    conv2 = Conversation(builtin_dialplan("plombier"), NOW, "+33612345678", extractor=llm2)
    asyncio.run(converse(conv2, ["Mon évier est bouché", "Paul Girard"]))
    assert llm2.calls == [] and conv2.lead.name == "Paul Girard"


def test_an_invented_llm_value_is_not_kept() -> None:
    llm = ScriptedExtractor({"name": "Jean Dupont"})  # never said by the caller
    conv = Conversation(builtin_dialplan("plombier"), NOW, "+33612345678", extractor=llm)
    asyncio.run(converse(conv, ["Mon évier est bouché", "Je suis la voisine de Madame Blanc"]))
    assert conv.lead.name is None


def test_every_field_is_handed_over_the_moment_it_is_understood() -> None:
    saved: list[tuple[str, str]] = []
    conv = Conversation(builtin_dialplan("plombier"), NOW, "+33612345678", on_field=lambda k, v: saved.append((k, v)))
    asyncio.run(converse(conv, ["Mon évier est bouché", "Paul Girard"]))
    assert saved == [("phone", "+33612345678"), ("problem", "canalisation bouchée : Mon évier est bouché"),
                     ("name", "Paul Girard")]


@pytest.mark.parametrize("form", FORMS)
def test_an_address_without_its_town_is_completed_by_the_town_said_alone(form: str) -> None:
    """The street ends with a commune's name ("Grande Fontaine": Fontaine, 38) and no town is said:
    the address has no town (it was the commune Fontaine, out of the area: the call ended); the read-
    back says the street alone, and the town said then completes it."""
    from agent.dialogue.chat import asr_form

    turns = ["Mon évier est bouché", "Paul Girard", "18 rue de la Grande Fontaine", "à Nice", "oui"]
    conv = Conversation(builtin_dialplan("plombier"), NOW, "+33612345678")
    replies = asyncio.run(converse(conv, [t if form == "typed" else asr_form(t) for t in turns]))
    assert "18 rue de la Grande Fontaine, et" in replies[3] and conv.outcome.action is None
    assert conv.lead.address == "18 rue de la Grande Fontaine, Nice" and "Nice" in replies[4]
    assert "proposer un passage" in replies[5]


def test_real_llm_within_budget_when_rules_miss() -> None:
    pytest.importorskip("llama_cpp")
    from agent.engines import load_llm

    llm, _ = load_llm(Path("/nonexistent"))
    conv = Conversation(builtin_dialplan("plombier"), NOW, "+33612345678", extractor=llm)
    started = time.monotonic()
    asyncio.run(converse(conv, ["Mon évier est bouché", "Je suis la voisine de Madame Blanc"]))
    assert time.monotonic() - started < 2.5  # LLM budget 1.2 s, plus rules
    assert conv.lead.name is None or "Blanc" in conv.lead.name  # nothing invented


def test_simulate_prints_the_seed_conversation_as_json() -> None:
    out = subprocess.run([str(REPO / ".venv/bin/standardiste"), "simulate", str(SCENARIOS / "seed.yaml"), "--json"],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert set(result) == {"replies", "lead", "urgency", "action", "booking"}
    assert result["urgency"] == "critical" and result["action"] == "transfer" and result["booking"] is None
    assert result["lead"] == {"name": "Marie Dubois", "address": "15 rue Victor Hugo, Nice", "phone": "+33612345678",
                              "problem": "J'ai une fuite d'eau importante dans ma cuisine, ça coule beaucoup",
                              "trade": "plombier"}
    assert "assistant automatique" in result["replies"][0]
    assert all(isinstance(r, str) and r for r in result["replies"])


def test_a_bad_scenario_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "scenario.yaml"
    bad.write_text("dialplan: plombier\nnow: hier\nturns: [bonjour]\n")
    out = subprocess.run([str(REPO / ".venv/bin/standardiste"), "simulate", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2 and "now: expected an ISO 8601 time" in out.stderr and "Traceback" not in out.stderr


def test_when_in_doubt_the_caller_is_asked_one_question_about_that_hazard() -> None:
    """Issue 21: one short yes/no question about the hazard the learned layer names (never a list
    of four dangers), asked once; yes, or a danger described, makes the call critical."""
    from agent.dialogue.phrases import CRITICAL_ASK, DANGER_CHECK, SAFETY_QUESTIONS
    from agent.dialogue.state import Action, Hazard, Severity

    def conv() -> Conversation:
        return Conversation(builtin_dialplan("electricien"), NOW, "+33612345678")

    doubt = "La lumière de la cuisine grésille et j'ai un peu peur"
    yes = conv()
    replies = asyncio.run(converse(yes, [doubt, "Oui !"]))
    asked = next(q for q in SAFETY_QUESTIONS.values() if q.text == replies[1])
    assert replies[2] == CRITICAL_ASK[("name", "address")] and yes.urgency is Severity.CRITICAL
    assert asked.text != DANGER_CHECK and asked.danger_if_yes
    no = conv()
    replies = asyncio.run(converse(no, [doubt, "Non", "Paul Girard"]))
    assert replies[1] == asked.text and asked.text not in replies[2:] and no.urgency is not Severity.CRITICAL
    assert not no.done and no.outcome.action is not Action.TRANSFER
    described = conv()  # no yes or no, but the danger itself: it counts
    asyncio.run(converse(described, [doubt, "Ça fait des étincelles et ça sent le brûlé maintenant"]))
    assert described.urgency is Severity.CRITICAL
    unclear = conv()  # an unclear answer to a question about a serious hazard counts as yes
    asyncio.run(converse(unclear, [doubt, "Euh, ben, c'est difficile à dire"]))
    assert unclear.urgency is Severity.CRITICAL
    routine = conv()
    replies = asyncio.run(converse(routine, ["Je voudrais faire installer deux prises dans le garage"]))
    assert replies[1] not in {q.text for q in SAFETY_QUESTIONS.values()} and routine.urgency is Severity.NORMAL
    assert SAFETY_QUESTIONS[Hazard.WATER].danger_if_yes is False  # "Avez-vous pu couper l'eau ?"
