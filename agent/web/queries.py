"""What the dashboard shows, read from the store (read-only connections; the web writes only the
artisan's follow-up of a lead, through the store's own writer)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from agent.store.dashboard import revenue
from agent.store.schema import FOLLOWUP_LABELS, STAGE_LABELS, CallStage, FollowUp, LeadStatus

PAGE_SIZE: Final = 25
TZ: Final = ZoneInfo("Europe/Paris")
URGENCY_LABELS: Final = {"normal": "normale", "urgent": "urgente", "critical": "critique"}
ACTION_LABELS: Final = {"transfer": "transfert", "booking": "rendez-vous", "message": "message", "info": "information",
                        "cancel": "annulation", None: "—"}
STATUS_LABELS: Final = {"new": "nouveau", "transferred": "transféré à l'artisan",
                         "transfer_failed": "artisan non joint", "booked": "rendez-vous pris", "message": "message",
                         "info": "information", "cancelled": "rendez-vous annulé"}
CSV_COLUMNS: Final = (("call_id", "appel"), ("created", "date"), ("name", "nom"), ("phone", "téléphone"),
                      ("address", "adresse"), ("problem", "problème"), ("urgency", "urgence"),
                      ("action", "action"), ("booking", "rendez-vous"), ("followup", "suivi"))


def mask(number: str | None) -> str:
    """"+33612345678" -> "06 •• •• •• 78": enough to recognise a caller, not to call them."""
    if not number:
        return "masqué"
    digits = "0" + number[3:] if number.startswith("+33") else number
    return f"{digits[:2]} •• •• •• {digits[-2:]}" if len(digits) >= 6 else "••"


def fr_date(ts: float | None, with_time: bool = True) -> str:
    if not ts:
        return ""
    d = datetime.fromtimestamp(ts, TZ)
    return d.strftime("%d/%m/%Y %H:%M" if with_time else "%d/%m/%Y")


@dataclass(frozen=True)
class Figures:
    calls: dict[str, int]
    answered_1s: float | None
    leads: int
    critical: int
    transferred: int
    transfer_failed: int
    bookings: int
    messages: int
    revenue_eur: int
    revenue_formula: str
    won_eur: int
    per_day: list[tuple[str, int]]
    per_hour: list[int]
    risk_share: float | None
    """Share of calls outside opening hours or on weekends (calls that would have been missed)."""


def figures(conn: sqlite3.Connection, basket_eur: int, conversion: float, now: float | None = None) -> Figures:
    now = time.time() if now is None else now
    today = datetime.fromtimestamp(now, TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    starts = {"aujourd'hui": today, "7 jours": today - timedelta(days=6), "30 jours": today - timedelta(days=29)}
    calls = {k: conn.execute("SELECT count(*) FROM calls WHERE started_at >= ?", (v.timestamp(),)).fetchone()[0]
             for k, v in starts.items()}
    since = starts["30 jours"].timestamp()
    answered = [r[0] for r in conn.execute("SELECT events FROM traces t JOIN calls c ON c.id = t.call_id "
                                           "WHERE c.started_at >= ?", (since,))]
    ok = [any(m.get("event") == "answered" and m["ms"] <= 1000 for m in json.loads(e)) for e in answered]
    rows = conn.execute("SELECT status, urgency, followup, count(*) FROM leads WHERE created_at >= ? "
                        "GROUP BY 1, 2, 3", (since,)).fetchall()
    voice = conn.execute("SELECT count(*) FROM leads WHERE created_at >= ? AND (status = ? OR recording IS NOT NULL)",
                         (since, LeadStatus.MESSAGE.value)).fetchone()[0]
    leads = sum(n for st, _u, _f, n in rows if st != LeadStatus.INFO)
    money = revenue(conn, since, basket_eur)
    estimate = round(money.open_leads * basket_eur * conversion)
    formula = (f"{money.open_leads} demande{'s' if money.open_leads > 1 else ''} en cours × {basket_eur} € de "
               f"panier moyen × {round(conversion * 100)} % de conversion")
    if money.won:
        n, s = money.won_with_amount, "s" if money.won_with_amount > 1 else ""
        formula = (f"{money.won_eur:,} € gagnés ({n} montant{s} saisi{s} sur {money.won}) + ".replace(",", " ")
                   + formula)
    per_day = []
    for i in range(13, -1, -1):
        day = today - timedelta(days=i)
        n = conn.execute("SELECT count(*) FROM calls WHERE started_at >= ? AND started_at < ?",
                         (day.timestamp(), (day + timedelta(days=1)).timestamp())).fetchone()[0]
        per_day.append((day.strftime("%d/%m"), n))
    per_hour = [0] * 24
    risky = total = 0
    for (started,) in conn.execute("SELECT started_at FROM calls WHERE started_at >= ?", (since,)):
        d = datetime.fromtimestamp(started, TZ)
        per_hour[d.hour] += 1
        total += 1
        risky += d.weekday() >= 5 or not 8 <= d.hour < 18
    return Figures(
        calls=calls, answered_1s=(sum(ok) / len(ok)) if ok else None, leads=leads,
        critical=sum(n for st, u, _f, n in rows if u == "critical"),
        transferred=sum(n for st, _u, _f, n in rows if st == LeadStatus.TRANSFERRED),
        transfer_failed=sum(n for st, _u, _f, n in rows if st == LeadStatus.TRANSFER_FAILED),
        bookings=sum(n for st, _u, _f, n in rows if st == LeadStatus.BOOKED),
        messages=voice,
        revenue_eur=money.won_eur + estimate, revenue_formula=formula,
        won_eur=money.won_eur, per_day=per_day, per_hour=per_hour,
        risk_share=(risky / total) if total else None)


def calls_page(conn: sqlite3.Connection, *, page: int = 1, urgency: str = "", action: str = "", text: str = "",
               day: str = "") -> tuple[list[dict[str, Any]], int]:
    where: list[str] = ["1"]
    args: list[object] = []
    if urgency:
        where.append("l.urgency = ?")
        args.append(urgency)
    if action:
        where.append("l.action = ?")
        args.append(action)
    if day:
        start = datetime.fromisoformat(day).replace(tzinfo=TZ)
        where.append("c.started_at >= ? AND c.started_at < ?")
        args += [start.timestamp(), (start + timedelta(days=1)).timestamp()]
    if text:
        where.append("(l.name LIKE ? OR l.address LIKE ? OR l.problem LIKE ? OR EXISTS (SELECT 1 FROM turns t "
                     "WHERE t.call_id = c.id AND t.text LIKE ?))")
        args += [f"%{text}%"] * 4
    sql = (f"FROM calls c LEFT JOIN leads l ON l.call_id = c.id WHERE {' AND '.join(where)}")
    total = conn.execute(f"SELECT count(*) {sql}", args).fetchone()[0]
    rows = conn.execute(f"SELECT c.id, c.started_at, c.ended_at, c.caller_id, c.outcome, l.name, l.problem, "
                        f"l.urgency, l.action, l.status {sql} ORDER BY c.started_at DESC LIMIT ? OFFSET ?",
                        [*args, PAGE_SIZE, (max(page, 1) - 1) * PAGE_SIZE]).fetchall()
    return [dict(r) | {"caller": mask(r["caller_id"]), "when": fr_date(r["started_at"]),
                       "urgency_fr": URGENCY_LABELS.get(r["urgency"] or "", ""),
                       "action_fr": ACTION_LABELS.get(r["action"], r["action"] or "")} for r in rows], total


def leads_rows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT l.*, c.caller_id AS presented FROM leads l JOIN calls c ON c.id = l.call_id "
                        "WHERE l.status != ? ORDER BY l.created_at DESC LIMIT 500", (LeadStatus.INFO.value,)).fetchall()
    return [dict(r) | {"created": fr_date(r["created_at"]), "booking": fr_date(r["booking_start"]),
                       "caller": mask(r["phone"] or r["presented"]),
                       "followup_fr": FOLLOWUP_LABELS.get(FollowUp(r["followup"]), r["followup"]),
                       "urgency_fr": URGENCY_LABELS.get(r["urgency"], r["urgency"]),
                       "action_fr": ACTION_LABELS.get(r["action"], r["action"] or "")} for r in rows]


def leads_csv(rows: list[dict[str, Any]], phone: Callable[[str], str] = str) -> bytes:
    """Semicolon-separated, UTF-8 with a BOM: what French Excel opens as it is. `phone` writes a number
    as a spreadsheet keeps it ("06 12 34 56 78": with its spaces it stays text, its 0 and + kept)."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";")
    writer.writerow([label for _key, label in CSV_COLUMNS])
    for r in rows:
        number = r.get("phone") or r.get("presented") or ""
        row = {**r, "phone": phone(number) if number else "", "urgency": r["urgency_fr"],
               "action": r["action_fr"], "followup": r["followup_fr"]}
        writer.writerow([row.get(key) or "" for key, _label in CSV_COLUMNS])
    return "\ufeff".encode() + buf.getvalue().encode("utf-8")


def calls_in_progress(conn: sqlite3.Connection, now: float | None = None) -> list[dict[str, Any]]:
    """Calls not ended yet (started within two hours): masked caller, stage, urgency, duration."""
    now = time.time() if now is None else now
    rows = conn.execute(
        "SELECT c.id, c.started_at, c.caller_id, c.stage, l.urgency, l.status, l.action, l.name IS NOT NULL AS named, "
        "l.address IS NOT NULL AS located, (SELECT count(*) FROM turns t WHERE t.call_id = c.id AND t.who = 'caller') "
        "AS turns FROM calls c LEFT JOIN leads l ON l.call_id = c.id WHERE c.ended_at IS NULL AND c.started_at > ? "
        "ORDER BY c.started_at", (now - 7200,)).fetchall()
    out = []
    for r in rows:
        if r["stage"] in (CallStage.TRANSFER, CallStage.MESSAGE, CallStage.GREETING):
            stage = STAGE_LABELS[CallStage(r["stage"])]
        elif r["action"] == "transfer":
            stage = "transfert vers l'artisan"
        elif r["action"]:
            stage = ACTION_LABELS.get(r["action"], r["action"])
        elif r["located"]:
            stage = "adresse notée"
        elif r["named"]:
            stage = "nom noté"
        else:
            stage = "accueil" if not r["turns"] else "écoute du problème"
        out.append({"id": r["id"], "caller": mask(r["caller_id"]), "stage": stage,
                    "urgency": URGENCY_LABELS.get(r["urgency"] or "normal", ""), "seconds": int(now - r["started_at"])})
    return out
