"""Malformed dialplans are rejected with the file, the key path and what was expected."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from agent.dialogue.dialplan import TRADES, builtin_dialplan, load_dialplan
from agent.yamlnode import ConfigError
from tests.conftest import REPO

BASE = (REPO / "agent/dialogue/dialplans/plombier.yaml").read_text()


def variant(edit: str) -> str:
    """The built-in plombier dialplan with one dotted key set to a YAML value (or removed with ~)."""
    data = yaml.safe_load(BASE)
    path, _, value = edit.partition("=")
    keys = path.split(".")
    node = data
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if value == "~DELETE":
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = yaml.safe_load(value)
    else:
        node[last] = yaml.safe_load(value)
    return yaml.safe_dump(data, allow_unicode=True)


CASES = [
    ("business=~DELETE", "business", "a section"),
    ("business.name=''", "business.name", "a non-empty string"),
    ("business.trade=boulanger", "business.trade", "one of plombier, electricien"),
    ("business.timezone=Mars/Olympus", "business.timezone", "an IANA time zone"),
    ("business.hours.mon=['8h-12h']", "business.hours.mon[0]", 'a range "HH:MM-HH:MM"'),
    ("business.hours.tue=['14:00-09:00']", "business.hours.tue[0]", "a range that ends after it starts"),
    ("business.hours.funday=['08:00-12:00']", "business.hours.funday", "no such key"),
    ("business.hours={mon: [], tue: [], wed: [], thu: [], fri: [], sat: [], sun: []}", "business.hours",
     "at least one opening window"),
    ("business.holidays=['2026-13-45']", "business.holidays[0]", "a date YYYY-MM-DD"),
    ("business.area=Nice", "business.area", "a non-empty list of words or phrases"),
    ("greeting='Bonjour, Plomberie Martin, que puis-je faire ?'", "greeting", "an automated assistant answers"),
    ("greeting='Bonjour, ici {entreprise}, assistant automatique.'", "greeting", "placeholders among {business}"),
    ("fields.0.name=email", "fields[0].name", "one of problem, name, address, phone"),
    ("fields.1.name=problem", "fields[1].name", "each field once"),
    ("fields.2.question=''", "fields[2].question", "a non-empty string"),
    ("fields=[]", "fields", "a non-empty list of lead fields"),
    ("urgency={triggers: [{id: x, severity: grave, all: [[fuite]]}]}", "urgency.triggers[0].severity",
     "one of critical, urgent, normal"),
    ("urgency={triggers: [{id: x, severity: urgent, all: [fuite]}]}", "urgency.triggers[0].all",
     "a list of groups"),
    ("urgency={triggers: [{id: x, severity: urgent, all: [[fuite]], months: [13]}]}",
     "urgency.triggers[0].months", "month numbers 1-12"),
    ("transfer.when=sometimes", "transfer.when", "one of critical, urgent, never"),
    ("transfer.targets=['PJSIP/artisan', '0612345678']", "transfer.targets[1]", "an Asterisk dial string"),
    ("transfer.targets=[]", "transfer.targets", "a non-empty list"),
    ("transfer.endpoint=PJSIP/artisan", "transfer.endpoint", "either endpoint (one target) or targets"),
    ("transfer.mode=warm", "transfer.mode", "one of attended, blind"),
    ("transfer.key_timeout=0", "transfer.key_timeout", "an integer from 2 to 60"),
    ("transfer.on_request='yes'", "transfer.on_request", "true or false"),
    ("mode=voicemail", "mode", "one of conversation, message"),
    ("transfer.ring_timeout=300", "transfer.ring_timeout", "an integer from 5 to 120"),
    ("transfer.on_failure=hangup", "transfer.on_failure", "one of message, booking"),
    ("booking.duration_minutes=-30", "booking.duration_minutes", "an integer from 15 to 480"),
    ("booking.buffer_minutes=lots", "booking.buffer_minutes", "an integer from 0 to 240"),
    ("booking.slots_offered=9", "booking.slots_offered", "an integer from 1 to 4"),
    ("booking.enabled=perhaps", "booking.enabled", "true or false"),
    ("sms.caller='Merci {prenom}'", "sms.caller", "placeholders among"),
    ("faq.0.answer=~DELETE", "faq[0].answer", "a string (required)"),
    ("faq.1.keywords=[]", "faq[1].keywords", "a non-empty list"),
    ("retention.recordings_days=365", "retention.recordings_days", "an integer from 0 to 183"),
    ("max_retries=0", "max_retries", "an integer from 1 to 5"),
    ("after_hours.action=transfer", "after_hours.action", "one of booking, message"),
    ("colour=blue", "colour", "no such key"),
]


@pytest.mark.parametrize(("edit", "path", "expected"), CASES, ids=[c[0].split("=")[0] for c in CASES])
def test_malformed_dialplan_is_rejected_precisely(tmp_path: Path, edit: str, path: str, expected: str) -> None:
    file = tmp_path / "dialplan.yaml"
    file.write_text(variant(edit))
    with pytest.raises(ConfigError) as err:
        load_dialplan(file)
    assert err.value.file == str(file)
    assert err.value.path == path, str(err.value)
    assert expected in str(err.value)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    file = tmp_path / "dialplan.yaml"
    file.write_text("business:\n  name: [Plomberie\n  trade: plombier\n")
    with pytest.raises(ConfigError, match=r"valid YAML .* at line \d+, column \d+"):
        load_dialplan(file)


def test_root_must_be_a_mapping(tmp_path: Path) -> None:
    file = tmp_path / "dialplan.yaml"
    file.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_dialplan(file)


def test_every_builtin_dialplan_is_valid() -> None:
    for trade in TRADES:
        plan = builtin_dialplan(trade)
        assert plan.trade.trade == trade
        assert plan.trade.emergencies and plan.trade.problems and plan.trade.basket_eur > 0
        assert "assistant automatique" in plan.greeting


def test_check_config_validates_dialplans_without_traceback(tmp_path: Path) -> None:
    good = REPO / "agent/dialogue/dialplans/serrurier.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text(variant("transfer.ring_timeout=300"))
    exe = str(REPO / ".venv/bin/standardiste")
    ok = subprocess.run([exe, "check-config", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0 and "dialplan for Serrurerie Bernard" in ok.stdout
    ko = subprocess.run([exe, "check-config", str(bad)], capture_output=True, text=True)
    assert ko.returncode == 2
    assert f"{bad}: transfer.ring_timeout: expected an integer from 5 to 120, got 300" in ko.stderr
    assert "Traceback" not in ko.stderr
