"""`standardiste chat DIALPLAN`: talk with a dialplan in the terminal before it goes live.

The caller types, the receptionist answers. `--asr` turns what is typed into what Vosk would print
(lower case, no punctuation, numbers as words), so an integrator sees what the rules get on a real
call. `--json` is a stable interface for test tools: one JSON object for the greeting, then one per
line read from standard input; end of input is the caller hanging up, and the last object is the
final state. Each object has the keys reply, done, lead, urgency, action and booking.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from num2words import num2words

from agent.dialogue.dialplan import TRADES, Dialplan, builtin_dialplan, load_dialplan
from agent.dialogue.policy import Conversation
from agent.dialogue.text import phone_number
from agent.yamlnode import ConfigError


def _say_digits(run: str) -> str:
    """How a French caller says a run of digits: phone numbers by pairs, postcodes as 2 + 3,
    a leading zero as "zéro"."""
    if len(run) == 10 and run.startswith("0"):
        return " ".join(_say_digits(run[i:i + 2]) for i in range(0, 10, 2))
    if len(run) == 5:
        return f"{_say_digits(run[:2])} {'mille' if run[2:] == '000' else _say_digits(run[2:])}"  # 06000, 06570
    if len(run) > 1 and run.startswith("0"):
        return "zéro " + _say_digits(run[1:])
    return str(num2words(int(run), lang="fr"))


def asr_form(text: str) -> str:
    """What an ASR prints for typed text: lower case, no punctuation, numbers as words, no hyphens."""
    t = text.lower().replace("œ", "oe")
    t = re.sub(r"\+33 ?", "zéro ", t)
    t = re.sub(r"\b\d+(?: \d\d){4}\b", lambda m: m.group(0).replace(" ", ""), t)  # 06 12 34 56 78
    t = re.sub(r"\d+", lambda m: f" {_say_digits(m.group(0))} ", t)
    t = t.replace("-", " ")
    t = re.sub(r"[^\w' ]", " ", t)
    return " ".join(t.split())


def dialplan_ref(ref: str) -> Dialplan:
    """A trade name (its built-in dialplan) or a dialplan file."""
    return builtin_dialplan(ref) if ref in TRADES else load_dialplan(Path(ref))


def state(conv: Conversation, reply: str) -> dict[str, Any]:
    booking = conv.outcome.booking
    return {"reply": reply, "done": conv.done, "lead": conv.lead.as_dict(), "urgency": str(conv.urgency),
            "action": str(conv.outcome.action) if conv.outcome.action else None,
            "booking": {"start": booking.start.isoformat(), "end": booking.end.isoformat()} if booking else None}


def chat(plan: Dialplan, *, now: datetime, caller_id: str | None, asr: bool, as_json: bool,
         lines: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    conv = Conversation(plan, now, caller_id)
    interactive = not as_json and lines.isatty()

    def show(reply: str, heard: str | None = None) -> None:
        if as_json:
            print(json.dumps(state(conv, reply), ensure_ascii=False), file=out, flush=True)
            return
        if heard is not None and asr:
            print(f"  (entendu : {heard})", file=out)
        if reply:
            print(f"standardiste> {reply}", file=out, flush=True)

    show(conv.start())
    while not conv.done:
        if interactive:
            print("vous> ", end="", file=out, flush=True)
        line = lines.readline()
        if not line:
            break
        said = asr_form(line.strip()) if asr else line.strip()
        show(asyncio.run(conv.turn(said)), said)
    conv.finish()
    if as_json:
        show("")
    else:
        s = state(conv, "")
        print(f"\nfiche : {json.dumps(s['lead'], ensure_ascii=False)}\nurgence : {s['urgency']}  action : "
              f"{s['action']}  rendez-vous : {s['booking']}", file=out)
    return 0


def parse_caller_id(raw: str | None) -> str | None:
    if raw is None or raw.lower() in ("anonymous", "anonyme", "masque"):
        return None
    number = phone_number(raw)
    if number is None:
        raise ConfigError("--caller-id", "", "a French number such as +33612345678 (or anonymous)", raw)
    return number


def parse_now(raw: str | None, plan: Dialplan) -> datetime:
    if raw is None:
        return datetime.now(plan.timezone)
    try:
        now = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError("--now", "", "an ISO 8601 time such as 2026-11-26T14:05:00+01:00", raw) from None
    return now if now.tzinfo else now.replace(tzinfo=plan.timezone)
