"""`standardiste forget NUMBER` (GDPR art. 17, the right to erasure): every call from that number
and every lead that holds it, with their transcripts, traces, voice messages and queued SMS, are
erased; the erasure itself is recorded with counts and a time, never the number."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import phonenumbers


@dataclass(frozen=True)
class Erasure:
    calls: int
    leads: int
    recordings: int
    messages: int
    """SMS (sent or queued) to that number or about those calls."""


def number_forms(number: str) -> set[str]:
    """The forms a number is stored in: E.164 as the caller ID and the dialogue write it, and as given.
    Raises ValueError for something that is not a phone number."""
    try:
        parsed = phonenumbers.parse(number, "FR")
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number ({exc})") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("not a possible phone number")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return {e164, number.strip()}


def forget(conn: sqlite3.Connection, number: str, now: float | None = None) -> Erasure:
    """Erase a person's data by their phone number, inside the writer's transaction (`Store.run`).
    Recording files are deleted too. The bookings' time slots stay (they hold nothing personal)."""
    forms = sorted(number_forms(number))
    marks = ",".join("?" * len(forms))
    call_ids = {r[0] for r in conn.execute(
        f"SELECT id FROM calls WHERE caller_id IN ({marks}) UNION "
        f"SELECT call_id FROM leads WHERE caller_id IN ({marks}) OR phone IN ({marks})", forms * 3)}
    ids = sorted(call_ids)
    id_marks = ",".join("?" * len(ids))
    recordings = 0
    leads = 0
    if ids:
        for (path,) in conn.execute(f"SELECT recording FROM leads WHERE call_id IN ({id_marks}) "
                                    "AND recording IS NOT NULL", ids).fetchall():
            Path(path).unlink(missing_ok=True)
            recordings += 1
        leads = conn.execute(f"SELECT count(*) FROM leads WHERE call_id IN ({id_marks})", ids).fetchone()[0]
    messages = conn.execute(
        f"DELETE FROM outbox WHERE recipient IN ({marks})" + (f" OR call_id IN ({id_marks})" if ids else ""),
        forms + ids).rowcount
    if ids:  # turns, leads, actions and traces go with their call (ON DELETE CASCADE)
        conn.execute(f"DELETE FROM calls WHERE id IN ({id_marks})", ids)
    done = Erasure(len(ids), leads, recordings, messages)
    conn.execute("INSERT INTO erasures (at, calls, leads, recordings, messages) VALUES (?, ?, ?, ?, ?)",
                 (time.time() if now is None else now, done.calls, done.leads, done.recordings, done.messages))
    return done
