"""`standardiste chat`: a dialplan in the terminal, and its --json interface for test tools."""

from __future__ import annotations

import json
import subprocess

from agent.dialogue.chat import asr_form
from tests.conftest import REPO

KEYS = {"reply", "done", "lead", "urgency", "action", "booking"}
NOW = "2026-12-02T10:00:00+01:00"


def chat(*args: str, lines: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / ".venv/bin/standardiste"), "chat", *args], input="".join(f"{x}\n" for x in lines),
                          capture_output=True, text=True, timeout=60)


def test_json_gives_one_object_for_the_greeting_one_per_line_and_the_final_state() -> None:
    turns = ["Bonjour, mon évier est bouché", "Paul Girard", "12 rue Rossini, Nice", "oui", "le premier"]
    out = chat("plombier", "--json", "--now", NOW, "--caller-id", "+33612345678", lines=turns)
    assert out.returncode == 0, out.stderr
    objects = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(objects) == 1 + len(turns) + 1
    assert all(set(o) == KEYS for o in objects)
    assert "assistant automatique" in objects[0]["reply"] and not objects[0]["done"]
    final = objects[-1]
    assert final["done"] and final["action"] == "booking" and final["urgency"] == "normal"
    assert final["lead"] == {"name": "Paul Girard", "address": "12 rue Rossini, Nice", "phone": "+33612345678",
                             "problem": "canalisation bouchée : Mon évier est bouché", "trade": "plombier"}
    assert final["booking"]["start"] == "2026-12-02T13:30:00+01:00"


def test_end_of_input_is_the_caller_hanging_up() -> None:
    out = chat("serrurier", "--json", "--now", NOW, "--caller-id", "anonymous", lines=["Ma porte a claqué"])
    objects = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(objects) == 3 and objects[-1]["done"] and objects[-1]["action"] == "message"
    assert objects[-1]["lead"]["phone"] is None and objects[-1]["urgency"] == "urgent"


def test_asr_turns_typed_text_into_what_vosk_prints() -> None:
    assert asr_form("J'habite 15 rue Victor-Hugo, 06000 Nice. Rappelez-moi au 06 12 34 56 78 !") == (
        "j'habite quinze rue victor hugo zéro six mille nice rappelez moi au zéro six douze trente quatre "
        "cinquante six soixante dix huit")
    out = chat("electricien", "--json", "--asr", "--now", NOW, "--caller-id", "anonymous",
               lines=["Il y a des étincelles dans le tableau électrique", "Marc Durand, 4 rue Mercière à Lyon"])
    final = json.loads(out.stdout.splitlines()[-1])
    assert final["action"] == "transfer" and final["urgency"] == "critical"
    assert final["lead"]["address"] == "4 rue Mercière, Lyon"


def test_the_terminal_conversation_and_its_errors() -> None:
    out = chat("chauffagiste", "--now", NOW, lines=["Bonjour, la chaudière est en panne, ma mère a 91 ans",
                                                    "Jeanne Roux, 8 rue de Paris à Rennes"])
    assert out.returncode == 0 and out.stdout.count("standardiste> ") == 3
    assert "urgence : critical  action : transfer" in out.stdout
    bad = chat("plombier", "--caller-id", "pas un numéro", lines=[])
    assert bad.returncode == 2 and "--caller-id: expected a French number" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = chat("/nonexistent/plan.yaml", lines=[])
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
