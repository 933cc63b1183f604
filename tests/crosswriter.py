"""Understanding measured across writers, and the learned severity layer trained (issue 21).

The outside corpus (../shared/corpus/openings-*.yaml) has four files by four independent writers;
the project's own scenarios and personas are a fifth "writer". Each fold trains the model on all
writers but one and plays the left-out writer's openings through the real conversation (rules
alone, then rules + that fold's model, on the same openings), typed and as the recogniser prints.
A score on data the model was trained on is never reported.

    python -m tests.crosswriter            # the cross-writer table (part of `make understanding`)
    python -m tests.crosswriter --train    # train on every writer, write agent/dialogue/data/severity.json.gz

What one opening gives: the receptionist's first reply. Critical "at once" = the call is taken as
critical (a transfer, or the one question before it: where to come); "after one question" = a
targeted safety question was asked and answered truthfully from the label (the danger is there
when the label is critical), with where-to-come answered first when it was asked.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from agent.dialogue.chat import asr_form
from agent.dialogue.dialplan import TRADES, builtin_dialplan
from agent.dialogue.phrases import SAFETY_QUESTIONS
from agent.dialogue.policy import Conversation
from agent.dialogue.severity import SeverityModel, fit, save
from agent.dialogue.state import Ask, Hazard, Severity

HERE = Path(__file__).parent
CORPUS = Path(os.environ.get("STANDARDISTE_CORPUS", HERE.parent.parent / "shared" / "corpus"))
PROJECT = "project"
NOW = datetime.fromisoformat("2026-12-02T10:00:00+01:00")
"""A winter weekday morning: open hours, the cold season."""
FORMS = ("typed", "asr")

HAZARD_OF = {
    "gas": Hazard.GAS, "co": Hazard.CO, "fire": Hazard.FIRE,
    "electric_water": Hazard.ELECTRIC_WATER, "water_electric": Hazard.ELECTRIC_WATER,
    "electric_shock": Hazard.ELECTRIC, "power_line": Hazard.ELECTRIC,
    "water_uncontrolled": Hazard.WATER, "sewage": Hazard.SEWAGE, "biohazard": Hazard.SEWAGE,
    "structure": Hazard.STRUCTURE, "falling_objects": Hazard.STRUCTURE, "falling_tree": Hazard.STRUCTURE,
    "broken_glass": Hazard.STRUCTURE,
    "person": Hazard.PERSON, "locked_in": Hazard.PERSON, "locked_out_danger": Hazard.PERSON,
    "cold_vulnerable": Hazard.PERSON, "power_vulnerable": Hazard.PERSON, "blocked_access": Hazard.PERSON,
    "security": Hazard.SECURITY,
}
"""Each writer named hazards in their own words: one list for the questions (state.Hazard)."""


@dataclass(frozen=True)
class Item:
    writer: str
    trade: str
    text: str
    urgency: str
    """critical | urgent | normal | none (the project's calls: no none)."""
    hazard: Hazard | None
    look_alike: bool = False


def corpus_items() -> list[Item]:
    out = []
    for path in sorted(CORPUS.glob("openings-*.yaml")):
        writer = path.stem.removeprefix("openings-")
        for raw in yaml.safe_load(path.read_text(encoding="utf-8")):
            hazard = HAZARD_OF[raw["hazard"]] if raw["urgency"] == "critical" else None
            out.append(Item(writer, raw["trade"], raw["text"], raw["urgency"], hazard, bool(raw.get("look_alike"))))
    return out


def project_items() -> list[Item]:
    """The first thing said in the project's own scenarios and personas (tests/data/heldback/ is never used)."""
    out = []
    for path in sorted((HERE / "data" / "scenarios" / "personas").glob("*.yaml")):
        for raw in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if raw.get("says") and raw["trade"] in TRADES and raw["expect"].get("urgency"):
                out.append(Item(PROJECT, raw["trade"], raw["says"][0], raw["expect"]["urgency"], None))
    for path in sorted((HERE / "data" / "scenarios").glob("*.yaml")):
        for raw in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if raw and raw.get("turns") and raw.get("expect") and raw["dialplan"] in TRADES \
                    and raw["expect"].get("urgency"):
                out.append(Item(PROJECT, raw["dialplan"], raw["turns"][0], raw["expect"]["urgency"], None))
    return out


def train(items: Sequence[Item], trained_on: str = "") -> dict[str, object]:
    """Every text typed and as the recogniser prints it (a live call only ever sees the latter)."""
    texts = [t for it in items for t in (it.text, asr_form(it.text))]
    return fit(texts, [it.urgency for it in items for _ in FORMS], [it.hazard for it in items for _ in FORMS],
               trained_on)


# --- one opening through the conversation -------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    at_once: Severity
    asked: bool
    """A targeted safety question was asked about this call."""
    after: Severity
    """The urgency once that question (if any) was answered truthfully."""


WHERE = "Jean Martin, 12 rue de la République à Nice."


async def _play(item: Item, form: str, reader: SeverityModel | None) -> Reply:
    plan = builtin_dialplan(item.trade)
    conv = Conversation(plan, NOW, "+33611223344", reader=reader)
    conv.start()
    say = (lambda t: asr_form(t)) if form == "asr" else (lambda t: t)
    await conv.turn(say(item.text))
    at_once = conv.urgency
    if conv.pending is not None and conv.pending.kind is Ask.NAME_ADDRESS:
        await conv.turn(say(WHERE))
    asked = False
    pending = conv.pending
    if pending is not None and pending.kind in (Ask.CHECK, Ask.DANGER) and not conv.done:
        asked = True
        danger = item.urgency == "critical"
        if pending.kind is Ask.CHECK and pending.trigger is not None and pending.trigger.check is not None:
            yes_is_danger = pending.trigger.check.if_yes.rank > pending.trigger.check.if_no.rank
        else:
            question = SAFETY_QUESTIONS.get(pending.hazard) if pending.hazard is not None else None
            yes_is_danger = question.danger_if_yes if question is not None else True
        await conv.turn("Oui." if danger is yes_is_danger else "Non.")
    return Reply(at_once, asked, conv.urgency)


def play(item: Item, form: str, reader: SeverityModel | None) -> Reply:
    return asyncio.run(_play(item, form, reader))


# --- the table ----------------------------------------------------------------------------------------
@dataclass
class Tally:
    critical: int = 0
    at_once: int = 0
    after: int = 0
    non_critical: int = 0
    false_critical: int = 0
    look_alike: int = 0
    false_look_alike: int = 0
    urgent: int = 0
    urgent_right: int = 0
    normal: int = 0
    normal_right: int = 0
    asked_non_critical: int = 0

    def add(self, item: Item, r: Reply) -> None:
        if item.urgency == "critical":
            self.critical += 1
            self.at_once += r.at_once is Severity.CRITICAL
            self.after += r.after is Severity.CRITICAL
            return
        self.non_critical += 1
        self.asked_non_critical += r.asked
        wrong = r.after is Severity.CRITICAL
        self.false_critical += wrong
        if item.look_alike:
            self.look_alike += 1
            self.false_look_alike += wrong
        if item.urgency == "urgent":
            self.urgent += 1
            self.urgent_right += r.after is Severity.URGENT
        else:
            self.normal += 1
            self.normal_right += r.after is Severity.NORMAL

    def __iadd__(self, other: Tally) -> Tally:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        return self

    def ratios(self) -> dict[str, float]:
        def r(a: int, b: int) -> float:
            return a / b if b else float("nan")
        return {"at_once": r(self.at_once, self.critical), "after": r(self.after, self.critical),
                "false_critical": r(self.false_critical, self.non_critical),
                "false_look_alike": r(self.false_look_alike, self.look_alike),
                "urgent": r(self.urgent_right, self.urgent), "normal": r(self.normal_right, self.normal),
                "asked_non_critical": r(self.asked_non_critical, self.non_critical)}

    def row(self) -> str:
        def pct(a: int, b: int) -> str:
            return f"{a}/{b} {100 * a / b:3.0f}%" if b else "-"
        return (f"{pct(self.at_once, self.critical):>13} {pct(self.after, self.critical):>13} "
                f"{pct(self.false_critical, self.non_critical):>13} {pct(self.false_look_alike, self.look_alike):>12} "
                f"{pct(self.urgent_right, self.urgent):>12} {pct(self.normal_right, self.normal):>13} "
                f"{pct(self.asked_non_critical, self.non_critical):>13}")


HEADER = (f"{'':34} {'crit at once':>13} {'crit 1 quest.':>13} {'false crit':>13} {'look-alikes':>12} "
          f"{'urgent ok':>12} {'normal ok':>13} {'non-crit asked':>13}")


@dataclass
class CrossWriter:
    rules: dict[str, Tally]
    """Form -> the rules alone, over every fold."""
    model: dict[str, Tally]
    """Form -> rules + model, over every fold (each writer scored by the model trained without it)."""
    lines: list[str]
    misses: list[str]


@dataclass
class Fold:
    """One writer left out: trained on the others, its openings played."""

    writer: str
    rules: dict[str, Tally]
    model: dict[str, Tally]
    lines: list[str]
    misses: list[str]


def _fold(items: Sequence[Item], test: str, verbose: bool, with_rules: bool) -> Fold:
    started = time.monotonic()
    reader = SeverityModel(train([it for it in items if it.writer != test], f"all but {test}"))
    held = [it for it in items if it.writer == test]
    fold = Fold(test, {f: Tally() for f in FORMS}, {f: Tally() for f in FORMS}, [], [])
    for form in FORMS:
        t_rules, t_model = fold.rules[form], fold.model[form]
        for it in held:
            if with_rules:
                t_rules.add(it, play(it, form, None))
            r = play(it, form, reader)
            t_model.add(it, r)
            if verbose and ((it.urgency == "critical") != (r.after is Severity.CRITICAL)):
                fold.misses.append(f"{test} {form} {it.urgency}->{r.at_once}/{r.after} asked={r.asked}: {it.text}")
        if with_rules:
            fold.lines.append(f"{test + ' ' + form + ', rules':34} {t_rules.row()}")
        fold.lines.append(f"{test + ' ' + form + ', rules + model':34} {t_model.row()}")
    fold.lines.append(f"  ({test}: trained and played in {time.monotonic() - started:.0f} s)")
    return fold


def cross_writer(writers: Sequence[str] | None = None, verbose: bool = False, with_rules: bool = True) -> CrossWriter:
    """The folds run in one process per core (each is independent; two minutes on one core)."""
    items = corpus_items() + project_items()
    names = list(dict.fromkeys(it.writer for it in items)) if writers is None else list(writers)
    rules = {f: Tally() for f in FORMS}
    model = {f: Tally() for f in FORMS}
    outside_rules = {f: Tally() for f in FORMS}
    outside_model = {f: Tally() for f in FORMS}
    lines = [HEADER]
    misses: list[str] = []
    size = {n: sum(it.writer == n for it in items) for n in names}
    with ProcessPoolExecutor(max_workers=min(len(names), os.cpu_count() or 1),
                             mp_context=multiprocessing.get_context("fork")) as pool:
        # The largest fold first (the project's 309 openings, twice an outside writer's): the others
        # fill the other core meanwhile.
        futures = {n: pool.submit(_fold, items, n, verbose, with_rules) for n in sorted(names, key=lambda n: -size[n])}
        folds = [futures[n].result() for n in names]
    for fold in folds:
        for form in FORMS:
            rules[form] += fold.rules[form]
            model[form] += fold.model[form]
            if fold.writer != PROJECT:
                outside_rules[form] += fold.rules[form]
                outside_model[form] += fold.model[form]
        lines += fold.lines
        misses += fold.misses
    for form in FORMS:
        if with_rules:
            lines.append(f"{'4 outside writers ' + form + ', rules':34} {outside_rules[form].row()}")
        lines.append(f"{'4 outside writers ' + form + ', rules + model':34} {outside_model[form].row()}")
    for form in FORMS:
        if with_rules:
            lines.append(f"{'ALL ' + form + ', rules':34} {rules[form].row()}")
        lines.append(f"{'ALL ' + form + ', rules + model':34} {model[form].row()}")
    return CrossWriter(rules, model, lines, misses)


def main(argv: list[str]) -> int:
    if "--train" in argv:
        items = corpus_items() + project_items()
        writers = sorted({it.writer for it in items})
        save(train(items, "+".join(writers)))
        print(f"trained on {len(items)} openings ({', '.join(writers)}), typed and as ASR text")
        return 0
    result = cross_writer(verbose="--misses" in argv)
    print("Cross-writer understanding of the first reply (train on the other writers, score on this one):")
    print("\n".join(result.lines))
    if result.misses:
        print("\n".join(result.misses))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
