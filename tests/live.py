"""Helpers for the live-call tests: a dialplan and service config for a test, a caller that speaks
as a person would (when the receptionist has finished), turn latencies measured at the phone."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from agent.devtools.asterisk import ARI_USER, DevAsterisk
from agent.devtools.phones import Phones
from agent.devtools.speech import CLOCK_RATE_HZ, SPEECH_RMS, frame_rms, speech_files
from agent.dialogue.profiles import PROFILES_DIR
from tests.signals import FRAME

utterance_wavs = speech_files

CALLER_NUMBER = "+33612345678"
SEED_TURNS = ("Oui bonjour, j'ai une fuite d'eau importante dans ma cuisine, ça coule beaucoup !",
              "Marie Dubois, 15 rue Victor Hugo à Nice.",
              "Non, je ne sais pas où c'est !")
GAS_TURN = ("Allô, je m'appelle Marie Dubois, 15 rue Victor Hugo à Nice, ça sent le gaz très fort dans ma cuisine, "
            "j'ai peur !")
GAS_TRIGGER = {"id": "gaz", "severity": "critical", "all": [["sent le gaz", "odeur de gaz", "fuite de gaz"]],
               "advice": "N'allumez rien, ouvrez les fenêtres et sortez."}


SHORT_GREETING = "Bonjour, ici l'assistant automatique de {business}."
"""The tests' greeting: the caller waits through it in every test, so it is short."""


def dialplan_file(tmp: Path, **changes: Any) -> Path:
    """The built-in plombier example with a short greeting and `changes` merged in (one level
    deep), as a file."""
    data = yaml.safe_load((PROFILES_DIR.parent / "dialplans" / "plombier.yaml").read_text())
    data["greeting"] = SHORT_GREETING
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    path = tmp / "dialplan.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def scripted(tmp: Path, turns: tuple[str, ...] | list[str], **knobs: Any) -> Path:
    """The scripted recogniser's file: what the caller says, turn by turn, and how long each stretch
    of it is voiced as the phones say it (its words show in step with that audio)."""
    from agent.devtools.speech import voiced_ms

    path = tmp / "scripted-asr.json"
    path.write_text(json.dumps({"utterances": list(turns), "voiced_ms": voiced_ms(turns), **knobs},
                               ensure_ascii=False))
    return path


def store_rows(db: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def wait_lead(db: Path, predicate: Any, timeout: float = 10.0, phones: Phones | None = None) -> sqlite3.Row:
    """The last lead once it matches; the phones keep working meanwhile (their events are pumped)."""
    rows: list[sqlite3.Row] = []

    def matches() -> bool:
        nonlocal rows
        if db.exists():
            rows = store_rows(db, "SELECT * FROM leads ORDER BY id")
        return bool(rows) and bool(predicate(rows[-1]))

    if phones is not None:
        phones.wait_until(matches, timeout)
    else:
        end = time.monotonic() + timeout
        while not matches() and time.monotonic() < end:
            time.sleep(0.1)
    if not matches():
        raise AssertionError(f"no lead matching; last: {[dict(r) for r in rows]}")
    return rows[-1]


def leftovers(ast: DevAsterisk, timeout: float = 10.0) -> tuple[list[str], list[str]]:
    """Channels and bridges still in Asterisk (waits up to `timeout` for them to go)."""
    end = time.monotonic() + timeout
    while True:
        auth = (ARI_USER, ast.ari_password)
        chans = [c["name"] for c in httpx.get(f"{ast.ari_url}/ari/channels", auth=auth, timeout=5).json()]
        bridges = [b["id"] for b in httpx.get(f"{ast.ari_url}/ari/bridges", auth=auth, timeout=5).json()]
        if (not chans and not bridges) or time.monotonic() > end:
            return chans, bridges
        time.sleep(0.2)


def heard_speech_between(heard: np.ndarray, t0: float, t1: float) -> float:
    """Seconds of speech in the recording between t0 and t1 (seconds from its start)."""
    rms = frame_rms(heard[int(t0 * CLOCK_RATE_HZ):int(t1 * CLOCK_RATE_HZ)])
    return float((rms > SPEECH_RMS).sum()) * FRAME / CLOCK_RATE_HZ
