"""Where callers pause mid-answer, would the end-of-turn words end the turn there (issue 22)?

The product ends a turn 200 ms into a pause when the words heard so far answer the question pending
(dialogue/complete.py `answers`), else after the 700 ms hangover. A caller who pauses inside an
answer whose first part already reads as complete is cut: the reply starts over them (the rest is
joined to the turn, nothing lost, but the receptionist talks over a caller).

Measured on callers someone else wrote: the outside personas (../shared/corpus/personas-outside-*.yaml,
two writers) play whole calls through the real conversation with ../shared/tools/callerbot.py's
simulated caller, typed and as the recogniser prints. Before each caller turn the question pending
is taken from the conversation, and every point where a speaker pauses inside that answer is tried:
- `sentence`: after . ? ! ... ("Lebrun. | Gaston Lebrun.");
- `comma`: after , ; : ("Oui, | le premier, | mais venez vite");
- `filler`: after euh / ben / bah / bon / alors ("Euh, | c'est Madame Vidal");
- `pair`: between the pairs of a dictated number ("06 | 12 | 34 | 56 | 78").
A cut is a prefix ending at such a point that `answers` takes as complete. The other figure is what
the decision saves: answers complete in their words, which end 200 ms into the pause instead of 700.

    python -m tests.pausepoints          # the table (part of `make understanding`)
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from agent.dialogue.chat import asr_form
from agent.dialogue.complete import answers, checkable
from agent.dialogue.heard import Expect
from agent.dialogue.policy import Conversation

HERE = Path(__file__).parent
CORPUS = Path(os.environ.get("STANDARDISTE_CORPUS", HERE.parent.parent / "shared" / "corpus"))
CALLERBOT = Path(os.environ.get("STANDARDISTE_CALLERBOT", HERE.parent.parent / "shared" / "tools" / "callerbot.py"))
FORMS = ("typed", "asr")
KINDS = ("sentence", "comma", "filler", "pair")
FILLERS = frozenset({"euh", "heu", "ben", "bah", "bon", "alors", "hein"})
MAX_TURNS = 14

_TOKEN = re.compile(r"\S+")
_PAIRS = re.compile(r"\b0\d(?: \d\d){4}\b")


def pause_points(text: str) -> list[tuple[int, str]]:
    """(offset, kind) of every point inside `text` where a speaker may pause; the end is left out."""
    out: dict[int, str] = {}
    for m in _PAIRS.finditer(text):
        for i in range(m.start() + 2, m.end(), 3):
            out[i] = "pair"
    for m in _TOKEN.finditer(text):
        end, word = m.end(), m.group(0)
        bare = word.strip(".,;:!?…").lower()
        if end >= len(text.rstrip()):
            continue
        if re.search(r"(\.|\?|!|…)$", word) and not re.fullmatch(r"(?:[A-Za-z]\.)+", word):
            out[end] = "sentence"
        elif re.search(r"[,;:]$", word):
            out[end] = "comma"
        elif bare in FILLERS:
            out[end] = "filler"
    return sorted(out.items())


@dataclass
class Tally:
    points: Counter[str] = field(default_factory=Counter)
    cuts: Counter[str] = field(default_factory=Counter)
    cut_by_question: Counter[str] = field(default_factory=Counter)
    answers_seen: int = 0
    answers_with_points: int = 0
    answers_cut: int = 0
    checkable_answers: int = 0
    complete_answers: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in ("points", "cuts", "cut_by_question"):
            getattr(self, name).update(getattr(other, name))
        for name in ("answers_seen", "answers_with_points", "answers_cut", "checkable_answers", "complete_answers"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.examples += other.examples


def _question(expect: Expect) -> str:
    return f"{expect.kind}:{expect.field}" if expect.field else str(expect.kind)


def judge(expect: Expect, said: str, form: str, conv: Conversation, tally: Tally) -> None:
    """Every pause point of one answer against the question it answers."""
    heard = said if form == "typed" else asr_form(said)
    tally.answers_seen += 1
    if checkable(expect):
        tally.checkable_answers += 1
        tally.complete_answers += answers(expect, heard, conv.now)
    points = pause_points(said)
    tally.answers_with_points += bool(points)
    cut = False
    for offset, kind in points:
        prefix = said[:offset]
        tally.points[kind] += 1
        if answers(expect, prefix if form == "typed" else asr_form(prefix), conv.now):
            tally.cuts[kind] += 1
            tally.cut_by_question[_question(expect)] += 1
            cut = True
            if len(tally.examples) < 400:
                tally.examples.append(f"[{_question(expect)}/{kind}] {prefix} | {said[offset:].strip()}")
    tally.answers_cut += cut


def callerbot() -> ModuleType:
    spec = importlib.util.spec_from_file_location("callerbot", CALLERBOT)
    assert spec is not None and spec.loader is not None, f"the caller-bot is missing: {CALLERBOT}"
    mod = importlib.util.module_from_spec(spec)
    sys.modules["callerbot"] = mod
    spec.loader.exec_module(mod)
    return mod


async def play(bot_mod: ModuleType, item: dict[str, Any], form: str) -> Tally:
    """One persona's whole call; each caller turn's pause points judged before the turn is taken."""
    import agent.dialogue.simulate as sim

    tally = Tally()
    plan = Path(bot_mod.any_area_plans()) / f"{item['dialplan']}.yaml"
    data = {"dialplan": str(plan), "now": item["now"], "turns": []}
    if item.get("caller_id") is not None:
        data["caller_id"] = item["caller_id"]
    scenario = sim.parse_scenario(data, f"{item['id']}", plan.parent)
    conv = Conversation(scenario.dialplan, scenario.now, scenario.caller_id)
    bot = bot_mod.Caller(item["caller"], scenario.caller_id, scenario.now)
    reply = conv.start()
    for _ in range(MAX_TURNS):
        if conv.done:
            break
        said, _label = bot.answer(reply)
        if said.startswith("("):
            break  # the caller hangs up or stays silent
        judge(conv.expect(), said, form, conv, tally)
        reply = await conv.turn(said if form == "typed" else asr_form(said))
        if bot.hangs_up:
            break
    conv.finish()
    return tally


def personas() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    files = sorted(CORPUS.glob("personas-outside-*.yaml"))
    assert files, f"the outside personas are missing: {CORPUS}"
    for f in files:
        yield f.stem, yaml.safe_load(f.read_text(encoding="utf-8"))


def measure() -> dict[tuple[str, str], Tally]:
    """Tallies by (writer's file, form)."""
    import logging

    logging.disable(logging.CRITICAL)
    bot_mod = callerbot()
    out: dict[tuple[str, str], Tally] = {}
    for name, items in personas():
        for form in FORMS:
            total = Tally()
            for item in items:
                total.add(asyncio.run(play(bot_mod, item, form)))
            out[(name, form)] = total
    return out


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:.0f} % ({n}/{d})" if d else "-"


def table(results: dict[tuple[str, str], Tally]) -> str:
    head = ("| writer | form | " + " | ".join(f"cut at a {k}" for k in KINDS)
            + " | answers cut | complete answers ended at 200 ms |")
    lines = [head, "|" + "---|" * (len(KINDS) + 4)]
    for (name, form), t in results.items():
        cells = [pct(t.cuts[k], t.points[k]) for k in KINDS]
        cells += [pct(t.answers_cut, t.answers_with_points), pct(t.complete_answers, t.checkable_answers)]
        lines.append(f"| {name} | {form} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    results = measure()
    print(table(results))
    by_question: Counter[str] = Counter()
    for t in results.values():
        by_question.update(t.cut_by_question)
    print("cuts by question pending:", ", ".join(f"{q} {n}" for q, n in by_question.most_common()))
    if "-v" in argv:
        for (name, form), t in results.items():
            print(f"\n## {name} {form}")
            print("\n".join(t.examples))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
