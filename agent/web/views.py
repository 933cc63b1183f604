"""What the dashboard's pages show, shaped for people from the store's typed reads (read-only
connections; the web writes only the artisan's follow-up of a lead, through the store's own writer)."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from agent.store import reports, rows
from agent.store.dashboard import revenue
from agent.store.schema import FOLLOWUP_LABELS, STAGE_LABELS, TRANSFER_ACTION, CallStage, LeadStatus, Urgency

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
    calls = {k: reports.count_calls(conn, v.timestamp()) for k, v in starts.items()}
    since = starts["30 jours"].timestamp()
    ok = [any(m.get("event") == "answered" and m["ms"] <= 1000 for m in marks)
          for _call, marks in rows.traces(conn, since)]
    tallies = reports.lead_tallies(conn, since)
    leads = sum(t.n for t in tallies if t.status != LeadStatus.INFO)
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
        n = reports.count_calls(conn, day.timestamp(), (day + timedelta(days=1)).timestamp())
        per_day.append((day.strftime("%d/%m"), n))
    per_hour = [0] * 24
    risky = total = 0
    for started in reports.call_starts(conn, since):
        d = datetime.fromtimestamp(started, TZ)
        per_hour[d.hour] += 1
        total += 1
        risky += d.weekday() >= 5 or not 8 <= d.hour < 18
    return Figures(
        calls=calls, answered_1s=(sum(ok) / len(ok)) if ok else None, leads=leads,
        critical=sum(t.n for t in tallies if t.urgency == Urgency.CRITICAL),
        transferred=sum(t.n for t in tallies if t.status == LeadStatus.TRANSFERRED),
        transfer_failed=sum(t.n for t in tallies if t.status == LeadStatus.TRANSFER_FAILED),
        bookings=sum(t.n for t in tallies if t.status == LeadStatus.BOOKED),
        messages=reports.voice_messages(conn, since),
        revenue_eur=money.won_eur + estimate, revenue_formula=formula,
        won_eur=money.won_eur, per_day=per_day, per_hour=per_hour,
        risk_share=(risky / total) if total else None)


def calls_page(conn: sqlite3.Connection, *, page: int = 1, urgency: str = "", action: str = "", text: str = "",
               day: str = "") -> tuple[list[dict[str, Any]], int]:
    since = until = None
    if day:
        start = datetime.fromisoformat(day).replace(tzinfo=TZ)
        since, until = start.timestamp(), (start + timedelta(days=1)).timestamp()
    lines, total = reports.calls_list(conn, reports.CallFilter(urgency, action, text, since, until), PAGE_SIZE,
                                      (max(page, 1) - 1) * PAGE_SIZE)
    return [vars(c) | {"caller": mask(c.caller_id), "when": fr_date(c.started_at),
                       "urgency_fr": URGENCY_LABELS.get(c.urgency or "", ""),
                       "action_fr": ACTION_LABELS.get(c.action, c.action or "")} for c in lines], total


def leads_rows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [vars(r) | {"created": fr_date(r.created_at), "booking": fr_date(r.booking_start),
                       "caller": mask(r.phone or r.presented),
                       "followup_fr": FOLLOWUP_LABELS.get(r.followup, r.followup),
                       "urgency_fr": URGENCY_LABELS.get(r.urgency, r.urgency),
                       "action_fr": ACTION_LABELS.get(r.action, r.action or "")} for r in rows.recent_leads(conn)]


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
    out = []
    for r in reports.live_calls(conn, now - 7200):
        if r.stage in (CallStage.TRANSFER, CallStage.MESSAGE, CallStage.GREETING):
            stage = STAGE_LABELS[r.stage]
        elif r.action == TRANSFER_ACTION:
            stage = "transfert vers l'artisan"
        elif r.action:
            stage = ACTION_LABELS.get(r.action, r.action)
        elif r.located:
            stage = "adresse notée"
        elif r.named:
            stage = "nom noté"
        else:
            stage = "accueil" if not r.caller_turns else "écoute du problème"
        out.append({"id": r.id, "caller": mask(r.caller_id), "stage": stage,
                    "urgency": URGENCY_LABELS.get(r.urgency or "normal", ""), "seconds": int(now - r.started_at)})
    return out
