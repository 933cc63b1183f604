"""A simulated caller: answers whatever the receptionist asks from a persona's facts, as a person
would, typed or as an ASR would print it; and the scoring of the understanding figures.

A persona (tests/data/scenarios/personas/*.yaml, held back: tests/data/heldback/personas-6.yaml):

    - id: plb-...                       # unique
      trade: plombier                   # a trade (its built-in dialplan) or a dialplan file
      now: "2026-12-02T10:00:00+01:00"
      caller_id: "+33611223301"         # or anonymous
      says: ["what the caller says first, unprompted"]
      facts:                            # how the caller answers each kind of question
        name: "Monsieur Petit, Alain Petit"   # default: expect.lead.name
        address: "8 rue Arson à Nice"         # default: expect.lead.address
        phone: "06 22 33 44 55"               # when asked for a number / to confirm another one
        problem: "..."                        # default: the first thing said
        check: "non, je ne sais pas"          # the answer to the trade's check question
        slot: "le premier"                    # the answer to the slots offered
        other: "oui"                          # the answer to anything else
      expect:
        urgency: critical
        action: transfer
        lead: {name: ..., address: ..., phone: ...}
        problem_words: [chaudiere]      # folded words the stored problem must hold
        booking_day: "2026-12-03"
        max_turns: 6                    # caller turns at most

`python -m tests.caller` prints the figures (what the README's "Understanding" section quotes).
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from agent.dialogue.chat import asr_form
from agent.dialogue.dialplan import TRADES, Dialplan, builtin_dialplan, load_dialplan
from agent.dialogue.phrases import SAFETY_QUESTIONS
from agent.dialogue.policy import Conversation
from agent.dialogue.problem import covers
from agent.dialogue.simulate import Scenario, load_scenarios
from agent.dialogue.state import Action, Severity
from agent.dialogue.text import fold, format_phone

HERE = Path(__file__).parent
PERSONAS = sorted((HERE / "data" / "scenarios" / "personas").glob("*.yaml"))
HELDBACK = sorted((HERE / "data" / "heldback").glob("*.yaml"))
SCENARIOS = sorted((HERE / "data" / "scenarios").glob("*.yaml"))
MAX_TURNS = 14
FORMS = ("typed", "asr")


# --- personas --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Persona:
    id: str
    plan: Dialplan
    now: datetime
    caller_id: str | None
    says: tuple[str, ...]
    facts: dict[str, str]
    expect: dict[str, Any]


def load_personas(path: Path) -> list[Persona]:
    out = []
    for raw in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
        ref = raw["trade"]
        plan = builtin_dialplan(ref) if ref in TRADES else load_dialplan(path.parent / ref)
        caller = raw.get("caller_id")
        out.append(Persona(raw["id"], plan, datetime.fromisoformat(raw["now"]),
                           None if caller in (None, "anonymous") else caller, tuple(raw.get("says") or ()),
                           {k: str(v) for k, v in (raw.get("facts") or {}).items()}, raw["expect"]))
    return out


@dataclass
class SimulatedCaller:
    persona: Persona
    asr: bool
    last: str = ""

    def _fact(self, key: str) -> str:
        p = self.persona
        lead = p.expect.get("lead") or {}
        if key in p.facts:
            return p.facts[key]
        if key == "phone":
            return format_phone(lead.get("phone") or p.caller_id or "+33600000000")
        if key == "problem":
            return p.says[0] if p.says else "c'est pour un renseignement"
        if key == "slot":
            return "le premier"
        if key == "check":
            return "je ne sais pas"
        return str(lead.get(key) or p.facts.get("other") or "oui")

    def _readback_right(self, reply: str) -> str | None:
        """None when what was read back is right, else the fact the caller corrects."""
        said = fold(reply)
        lead = self.persona.expect.get("lead") or {}
        digits = re.sub(r"\D", "", reply)
        if lead.get("address"):
            number, _, rest = fold(lead["address"]).partition(" ")
            street = rest.split()[1] if len(rest.split()) > 1 else rest
            if not re.search(rf"\b{number}\b", said) or street not in said:
                return "address"
        phone = lead.get("phone")
        if phone and ("rappeler" in said or "numero" in said or len(digits) >= 10):
            if format_phone(phone).replace(" ", "") not in digits:
                return "phone"
        return None

    def answer(self, reply: str) -> str:
        """What this caller says to the receptionist's reply."""
        text = self._answer(reply)
        self.last = text
        return asr_form(text) if self.asr else text

    def _answer(self, reply: str) -> str:
        f = fold(reply)
        questions = [q for q in re.split(r"(?<=[.?!])\s+", reply) if q.endswith("?")]
        q = fold(questions[-1]) if questions else f
        plan = self.persona.plan
        if any(t.check and fold(t.check.question) in f for t in plan.triggers):
            return self._fact("check")
        if "danger immediat" in q:
            # The caller knows whether they are in danger.
            return "oui, c'est dangereux" if self.persona.expect.get("urgency") == "critical" else "non, pas de danger"
        safety = next((s for s in SAFETY_QUESTIONS.values() if fold(s.text) in f), None)
        if safety is not None:  # a targeted question (issue 21): answered truthfully, as above
            danger = self.persona.expect.get("urgency") == "critical"
            return "oui" if danger is safety.danger_if_yes else "non"
        if "souhaitez vous que je prenne" in q:
            return self._fact("other")
        if "toujours la" in q:
            return self.last or "oui"
        if "recapitule" in f or "c est bien ca" in q or "j ai note" in f:
            wrong = self._readback_right(reply)
            return "oui c'est ça" if wrong is None else f"non, c'est {self._fact(wrong)}"
        if "rappeler au" in q:
            lead = self.persona.expect.get("lead") or {}
            if lead.get("phone") and lead["phone"] != self.persona.caller_id:
                return self._fact("phone")
            return "oui"
        if "message" in f and ("laissez" in f or "dites moi" in f):
            return f"{self._fact('name')}, {self._fact('address')}. {self._fact('problem')}"
        if "nom" in q and "adresse" in q:
            return f"{self._fact('name')}, {self._fact('address')}"
        if "nom" in q:
            return self._fact("name")
        if "adresse" in q or "ou faut il" in q:
            return self._fact("address")
        if "numero" in q:
            return self._fact("phone")
        if "decrire" in q or "probleme" in q or "quel est le souci" in q or "votre demande" in q:
            return self._fact("problem")
        if "passage" in f or "creneau" in f or "convient" in q:
            return self._fact("slot")
        return self._fact("other")


# --- running and scoring ---------------------------------------------------------------------------
@dataclass
class Outcome:
    id: str
    form: str
    replies: list[str]
    said: list[str]
    lead: dict[str, Any]
    urgency: Severity
    action: Action | None
    booking_day: str | None
    turns: int
    wrong: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)


async def _run_persona(p: Persona, asr: bool) -> Outcome:
    conv = Conversation(p.plan, p.now, p.caller_id)
    caller = SimulatedCaller(p, asr)
    replies = [conv.start()]
    said: list[str] = []
    pending = [asr_form(s) if asr else s for s in p.says]
    while not conv.done and len(said) < MAX_TURNS:
        text = pending.pop(0) if pending else caller.answer(replies[-1])
        said.append(text)
        replies.append(await conv.turn(text))
    conv.finish()
    bk = conv.outcome.booking
    return Outcome(p.id, "asr" if asr else "typed", replies, said, conv.lead.as_dict(), conv.urgency,
                   conv.outcome.action, bk.start.date().isoformat() if bk else None, len(said))


def _same(want: Any, got: Any, asr: bool) -> bool:
    if asr and isinstance(want, str) and isinstance(got, str):
        return fold(want) == fold(got)
    return bool(want == got)


def score(out: Outcome, expect: dict[str, Any]) -> Outcome:
    asr = out.form == "asr"

    def check(key: str, want: Any, got: Any, ok: bool | None = None) -> None:
        out.checked.append(key)
        if not (ok if ok is not None else _same(want, got, asr)):
            out.wrong[key] = (want, got)

    if "urgency" in expect:
        check("urgency", expect["urgency"], out.urgency)
    if "action" in expect:
        check("action", expect["action"], out.action)
    for key, want in (expect.get("lead") or {}).items():
        if key == "problem" and want:
            # The trade's label first, then the caller's own words: "fuite d'eau : ça coule partout".
            got = out.lead.get(key) or ""
            check(key, want, got, fold(got) == fold(want) or fold(got).startswith(fold(want) + " ")
                  or covers(got, want))
        else:
            check(key, want, out.lead.get(key))
    if "problem_words" in expect:
        got = fold(out.lead.get("problem") or "")
        check("problem", expect["problem_words"], out.lead.get("problem"),
              all(re.search(rf"\b{fold(w)}", got) for w in expect["problem_words"]))
    if "booking_day" in expect:
        check("booking", expect["booking_day"], out.booking_day)
    if "max_turns" in expect:
        check("turns", f"<= {expect['max_turns']}", out.turns, out.turns <= expect["max_turns"])
    return out


_RUNS: dict[tuple[str, str], Outcome] = {}


def run_persona(p: Persona, form: str) -> Outcome:
    """One persona's call, scored (each is run once per form and process: the figures reuse it)."""
    key = (p.id, form)
    if key not in _RUNS:
        _RUNS[key] = score(asyncio.run(_run_persona(p, form == "asr")), p.expect)
    return _RUNS[key]


def scenario_as(sc: Scenario, form: str) -> Scenario:
    if form == "typed":
        return sc
    return Scenario(sc.dialplan, sc.caller_id, sc.now, tuple(asr_form(t) for t in sc.turns), sc.expect)


def run_scenario(sid: str, sc: Scenario, form: str) -> Outcome:
    """One written scenario, scored (cached like `run_persona`)."""
    if (sid, form) not in _RUNS:
        _RUNS[(sid, form)] = _run_scenario(sid, sc, form)
    return _RUNS[(sid, form)]


def _run_scenario(sid: str, sc: Scenario, form: str) -> Outcome:
    from agent.dialogue.simulate import run_sync

    r = run_sync(scenario_as(sc, form))
    out = Outcome(sid, form, r["replies"], list(scenario_as(sc, form).turns), r["lead"], r["urgency"], r["action"],
                  r["booking"]["start"][:10] if r["booking"] else None, len(r["replies"]) - 1)
    expect = dict(sc.expect or {})
    booking = expect.pop("booking", "absent")
    score(out, expect)
    if booking != "absent":
        got = r["booking"]
        ok = (booking is None) == (got is None) and (not booking or booking["start"] == got["start"])
        out.checked.append("booking")
        if not ok:
            out.wrong["booking"] = (booking, got)
    return out


def fixed_scenarios() -> list[tuple[str, Scenario]]:
    return [(f"{path.stem}-{i + 1}", sc) for path in SCENARIOS for i, sc in enumerate(load_scenarios(path))
            if sc.expect is not None]


def all_personas() -> list[Persona]:
    return [p for path in PERSONAS for p in load_personas(path)]


def heldback() -> list[Persona]:
    """The held-back personas (tests/data/heldback/): scored as a whole, never tuned on."""
    return [p for path in HELDBACK for p in load_personas(path)]


# --- figures ------------------------------------------------------------------------------------
FIELD_KEYS = ("name", "address", "phone", "problem")


def figures(outs: list[Outcome]) -> dict[str, Any]:
    """Critical recall (critical calls found critical and put through, or handled as the dialplan
    says when it forbids the transfer) and precision, fields, urgency, action, booking, turns."""
    crit_want = [o for o in outs if _expected(o, "urgency") == "critical"]
    crit_got = [o for o in outs if o.action is Action.TRANSFER and o.urgency is Severity.CRITICAL]
    put_through = [o for o in crit_want if o.urgency is Severity.CRITICAL
                   and o.action == (_expected(o, "action") or Action.TRANSFER)]
    right_crit = [o for o in crit_got if _expected(o, "urgency") == "critical"]
    counts: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for o in outs:
        for key in o.checked:
            k = "fields" if key in FIELD_KEYS else key
            totals[k] += 1
            counts[k] += key not in o.wrong
    per_level = {level.value: (sum(1 for o in outs if _expected(o, "urgency") == level.value and o.urgency is level),
                               sum(1 for o in outs if _expected(o, "urgency") == level.value))
                 for level in Severity}
    return {
        "calls": len(outs),
        "urgency_by_level": per_level,
        "critical_recall": (len(put_through), len(crit_want)),
        "critical_precision": (len(right_crit), len(crit_got)),
        **{k: (counts[k], totals[k]) for k in ("fields", "urgency", "action", "booking", "turns") if totals[k]},
        "turns_per_call": round(sum(o.turns for o in outs) / max(1, len(outs)), 1),
    }


_EXPECTS: dict[tuple[str, str], dict[str, Any]] = {}


def _expected(o: Outcome, key: str) -> Any:
    return _EXPECTS.get((o.id, o.form), {}).get(key)


def run_all(personas: list[Persona], scenarios: list[tuple[str, Scenario]], form: str) -> list[Outcome]:
    outs = []
    for p in personas:
        _EXPECTS[(p.id, form)] = p.expect
        outs.append(run_persona(p, form))
    for sid, sc in scenarios:
        _EXPECTS[(sid, form)] = sc.expect or {}
        outs.append(run_scenario(sid, sc, form))
    return outs


def format_figures(title: str, fig: dict[str, Any]) -> str:
    def pct(pair: tuple[int, int]) -> str:
        a, b = pair
        return f"{a}/{b} = {a / b:.0%}" if b else "n/a"

    lines = [f"{title} ({fig['calls']} calls)"]
    lines += [f"  {k:20} {pct(fig[k])}" for k in ("critical_recall", "critical_precision", "fields", "urgency",
                                                   "action", "booking", "turns") if k in fig]
    lines.append("  urgency by level     " + ", ".join(f"{k} {pct(v)}" for k, v in fig["urgency_by_level"].items()))
    lines.append(f"  {'turns_per_call':20} {fig['turns_per_call']}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    show = "-v" in argv
    sets = [("project scenarios + personas", all_personas(), fixed_scenarios())]
    if "--heldback" in argv:
        sets.append(("held-back personas", heldback(), []))
    for title, personas, scenarios in sets:
        for form in FORMS:
            outs = run_all(personas, scenarios, form)
            print(format_figures(f"{title}, {form}", figures(outs)))
            if show:
                for o in outs:
                    if o.wrong:
                        print(f"    {o.id}: {o.wrong}\n      said: {o.said}\n      replies: {o.replies[1:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
