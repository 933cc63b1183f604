"""What the dashboard and the metrics count, read from the store as typed rows (the web room shapes
them for people and Prometheus; it writes no SQL)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Final

from agent.store.schema import CallStage, FollowUp, LeadStatus, Urgency, Who


@dataclass(frozen=True)
class LeadTally:
    status: LeadStatus
    urgency: Urgency
    followup: FollowUp
    n: int


@dataclass(frozen=True)
class CallLine:
    """A call in the Appels list, with what its lead says."""

    id: int
    started_at: float
    ended_at: float | None
    caller_id: str
    outcome: str | None
    name: str | None
    problem: str | None
    urgency: Urgency | None
    action: str | None
    status: LeadStatus | None


@dataclass(frozen=True)
class CallFilter:
    urgency: str = ""
    action: str = ""
    text: str = ""
    """In the name, the address, the problem or anything either side said."""
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True)
class LiveCall:
    """A call in progress and how far it got."""

    id: int
    started_at: float
    caller_id: str
    stage: CallStage | None
    urgency: Urgency | None
    action: str | None
    named: bool
    located: bool
    caller_turns: int


def count_calls(conn: sqlite3.Connection, since: float, until: float | None = None) -> int:
    n: int = conn.execute("SELECT count(*) FROM calls WHERE started_at >= ? AND started_at < ?",
                          (since, until if until is not None else float("inf"))).fetchone()[0]
    return n


def call_starts(conn: sqlite3.Connection, since: float) -> list[float]:
    return [r[0] for r in conn.execute("SELECT started_at FROM calls WHERE started_at >= ?", (since,))]


def lead_tallies(conn: sqlite3.Connection, since: float) -> list[LeadTally]:
    return [LeadTally(LeadStatus(st), Urgency(u), FollowUp(f), n) for st, u, f, n in conn.execute(
        "SELECT status, urgency, followup, count(*) FROM leads WHERE created_at >= ? GROUP BY 1, 2, 3", (since,))]


def voice_messages(conn: sqlite3.Connection, since: float) -> int:
    """Leads since then that hold a voice message (or were left as one)."""
    n: int = conn.execute("SELECT count(*) FROM leads WHERE created_at >= ? AND (status = ? OR recording IS NOT NULL)",
                          (since, LeadStatus.MESSAGE)).fetchone()[0]
    return n


def calls_list(conn: sqlite3.Connection, f: CallFilter, limit: int, offset: int) -> tuple[list[CallLine], int]:
    """A page of calls, newest first, and how many match in all."""
    where: list[str] = ["1"]
    args: list[object] = []
    if f.urgency:
        where.append("l.urgency = ?")
        args.append(f.urgency)
    if f.action:
        where.append("l.action = ?")
        args.append(f.action)
    if f.since is not None:
        where.append("c.started_at >= ?")
        args.append(f.since)
    if f.until is not None:
        where.append("c.started_at < ?")
        args.append(f.until)
    if f.text:
        where.append("(l.name LIKE ? OR l.address LIKE ? OR l.problem LIKE ? OR EXISTS (SELECT 1 FROM turns t "
                     "WHERE t.call_id = c.id AND t.text LIKE ?))")
        args += [f"%{f.text}%"] * 4
    sql = f"FROM calls c LEFT JOIN leads l ON l.call_id = c.id WHERE {' AND '.join(where)}"
    total: int = conn.execute(f"SELECT count(*) {sql}", args).fetchone()[0]
    rows = conn.execute(f"SELECT c.id, c.started_at, c.ended_at, c.caller_id, c.outcome, l.name, l.problem, "
                        f"l.urgency, l.action, l.status {sql} ORDER BY c.started_at DESC LIMIT ? OFFSET ?",
                        [*args, limit, offset]).fetchall()
    return [CallLine(r[0], r[1], r[2], r[3], r[4], r[5], r[6], Urgency(r[7]) if r[7] else None, r[8],
                     LeadStatus(r[9]) if r[9] else None) for r in rows], total


def live_calls(conn: sqlite3.Connection, since: float) -> list[LiveCall]:
    """Calls not ended yet that started after `since`, oldest first."""
    rows = conn.execute(
        "SELECT c.id, c.started_at, c.caller_id, c.stage, l.urgency, l.action, l.name IS NOT NULL, "
        "l.address IS NOT NULL, (SELECT count(*) FROM turns t WHERE t.call_id = c.id AND t.who = ?) "
        "FROM calls c LEFT JOIN leads l ON l.call_id = c.id WHERE c.ended_at IS NULL AND c.started_at > ? "
        "ORDER BY c.started_at", (Who.CALLER, since)).fetchall()
    return [LiveCall(r[0], r[1], r[2], CallStage(r[3]) if r[3] else None, Urgency(r[4]) if r[4] else None, r[5],
                     bool(r[6]), bool(r[7]), r[8]) for r in rows]


def last_call_turns(conn: sqlite3.Connection) -> list[tuple[Who, str]]:
    """What was said in the newest call so far, in order (the demo prints it live)."""
    return [(Who(who), text) for who, text in conn.execute(
        "SELECT who, text FROM turns WHERE call_id = (SELECT max(id) FROM calls) ORDER BY id")]


# --- the metrics ---------------------------------------------------------------------------------------
RUNNING: Final = "running"
"""The outcome counted for a call not ended yet."""


def outcomes(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    return [(o, n) for o, n in conn.execute(f"SELECT coalesce(outcome, '{RUNNING}'), count(*) FROM calls GROUP BY 1")]


def engine_failures(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """Engine failures during calls, by stage (asr, llm, tts)."""
    return [(s, n) for s, n in conn.execute("SELECT target, count(*) FROM actions WHERE kind = 'engine' GROUP BY 1")]


def transfer_results(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """Transfers by the result of their last step."""
    return [(r, n) for r, n in conn.execute(
        "SELECT result, count(*) FROM actions a WHERE kind = 'transfer' AND id = "
        "(SELECT max(id) FROM actions b WHERE b.call_id = a.call_id AND b.kind = 'transfer') GROUP BY 1")]


def outbox_states(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """Outbox messages by route and state."""
    return [(r, s, n) for r, s, n in conn.execute("SELECT route, state, count(*) FROM outbox GROUP BY 1, 2")]
