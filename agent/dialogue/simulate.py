"""`standardiste simulate SCENARIO.yaml`: a conversation from text turns, printed as JSON."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from agent.dialogue.dialplan import TRADES, Dialplan, builtin_dialplan, load_dialplan
from agent.dialogue.policy import Conversation
from agent.dialogue.text import phone_number
from agent.llm.base import Extractor
from agent.yamlnode import ConfigError, Node


@dataclass(frozen=True)
class Scenario:
    dialplan: Dialplan
    caller_id: str | None
    now: datetime
    turns: tuple[str, ...]
    expect: dict[str, Any] | None


def parse_scenario(data: Any, file: str, base_dir: Path) -> Scenario:
    node = Node(file, "", data)
    ref = node.text("dialplan", required=True)
    if ref in TRADES:
        plan = builtin_dialplan(ref)
    else:
        path = Path(ref) if Path(ref).is_absolute() else base_dir / ref
        plan = load_dialplan(path)
    caller = node.opt_str("caller_id")
    caller_id = phone_number(caller) if caller else None
    if caller and caller_id is None and caller.lower() not in ("anonymous", "anonyme", "masque"):
        raise node.error("caller_id", "a French number such as +33612345678 (or anonymous)", caller)
    raw_now = node.raw("now")
    try:
        now = raw_now if isinstance(raw_now, datetime) else datetime.fromisoformat(str(raw_now))
    except ValueError:
        raise node.error("now", "an ISO 8601 time with its offset, e.g. 2026-11-26T14:05:00+01:00", raw_now) from None
    if now.tzinfo is None:
        raise node.error("now", "a time with its UTC offset", raw_now)
    turns = node.raw("turns")
    if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
        raise node.error("turns", "a list of what the caller says, one string a turn (\"\" for silence)", turns)
    expect = node.raw("expect")
    node.raw("title")
    node.close()
    return Scenario(plan, caller_id, now, tuple(turns), expect if isinstance(expect, dict) else None)


def load_scenarios(path: Path) -> list[Scenario]:
    """One scenario per YAML document in the file."""
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), "", f"a readable YAML scenario ({exc})") from None
    return [parse_scenario(d, f"{path}#{i + 1}" if len(docs) > 1 else str(path), path.parent)
            for i, d in enumerate(docs)]


async def run(scenario: Scenario, extractor: Extractor | None = None) -> dict[str, Any]:
    conv = Conversation(scenario.dialplan, scenario.now, scenario.caller_id, extractor=extractor)
    replies = [conv.start()]
    for turn in scenario.turns:
        if conv.done:
            break
        replies.append(await conv.turn(turn))
    conv.finish()
    booking = conv.outcome.booking
    return {
        "replies": replies,
        "lead": conv.lead.as_dict(),
        "urgency": conv.urgency,
        "action": conv.outcome.action,
        "booking": {"start": booking.start.isoformat(), "end": booking.end.isoformat()} if booking else None,
    }


def run_sync(scenario: Scenario, extractor: Extractor | None = None) -> dict[str, Any]:
    return asyncio.run(run(scenario, extractor))


def simulate_file(path: Path, extractor: Extractor | None = None) -> list[dict[str, Any]]:
    """`standardiste simulate`: every scenario of a file, with the LLM for misses if given."""
    return [run_sync(s, extractor) for s in load_scenarios(path)]


def print_results(results: list[dict[str, Any]], *, as_json: bool) -> None:
    import json

    if as_json:
        print(json.dumps(results[0] if len(results) == 1 else results, ensure_ascii=False, indent=2))
        return
    for r in results:
        for reply in r["replies"]:
            print(f"agent> {reply}")
        print(f"lead: {r['lead']}\nurgency: {r['urgency']}  action: {r['action']}  booking: {r['booking']}\n")
