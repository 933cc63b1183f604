"""The dashboard's words for a person (issue 23): what happened on a call in plain French, how long
ago, plurals, a number to tap. No SQL here: the store's typed rows in, French out."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

import phonenumbers

from agent.store.dashboard import LeadCard, TodoKind
from agent.store.schema import LeadStatus, Urgency

TZ: Final = ZoneInfo("Europe/Paris")
TODO_TITLES: Final = {TodoKind.UNREACHED: "Urgence NON jointe : rappeler tout de suite",
                      TodoKind.MESSAGE: "Message vocal à écouter", TodoKind.CALL_BACK: "À rappeler",
                      TodoKind.BOOKING: "Rendez-vous"}


def plural(n: int, word: str, many: str | None = None) -> str:
    """"1 appel", "2 appels", "0 appel" (French: 0 and 1 are singular)."""
    return f"{n} {word if n < 2 else (many or word + 's')}"


def ago(ts: float, now: float | None = None) -> str:
    """"il y a 5 min", "il y a 3 h", "hier à 18:20", "le 02/12 à 09:05"."""
    now = time.time() if now is None else now
    s = max(0, int(now - ts))
    if s < 60:
        return "à l'instant"
    if s < 3600:
        return f"il y a {s // 60} min"
    then, today = datetime.fromtimestamp(ts, TZ), datetime.fromtimestamp(now, TZ)
    if s < 12 * 3600 and then.date() == today.date():
        return f"il y a {s // 3600} h"
    if (today.date() - then.date()).days == 1:
        return f"hier à {then:%H:%M}"
    return f"le {then:%d/%m} à {then:%H:%M}"


def when(ts: float | None) -> str:
    """A booking's time: "aujourd'hui à 14:30", "demain à 09:00", "le 04/12 à 10:00"."""
    if ts is None:
        return ""
    then, today = datetime.fromtimestamp(ts, TZ), datetime.now(TZ)
    days = (then.date() - today.date()).days
    day = {0: "aujourd'hui", 1: "demain"}.get(days, f"le {then:%d/%m}")
    return f"{day} à {then:%H:%M}"


def phone_display(number: str | None) -> str:
    """"+33612345678" -> "06 12 34 56 78" (a foreign number in its international form)."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number, "FR")
    except phonenumbers.NumberParseException:
        return number
    fmt = phonenumbers.PhoneNumberFormat
    return phonenumbers.format_number(parsed, fmt.NATIONAL if parsed.country_code == 33 else fmt.INTERNATIONAL)


def tel(number: str | None) -> str:
    """A `tel:` link target (digits and +, nothing else), or "" without a number."""
    if not number:
        return ""
    return "tel:" + "".join(ch for ch in number if ch.isdigit() or ch == "+")


def sms(number: str | None) -> str:
    return "sms:" + tel(number)[4:] if number else ""


def outcome(card: LeadCard) -> tuple[str, str]:
    """What happened, in plain French, and its tone (alert, warn, ok, info) for the colour."""
    critical = card.urgency is Urgency.CRITICAL
    match card.status:
        case LeadStatus.TRANSFER_FAILED:
            if critical:
                return "Urgence NON jointe : rappeler tout de suite", "alert"
            return "Transfert non abouti : l'appelant attend votre rappel", "warn"
        case LeadStatus.TRANSFERRED:
            return ("Urgence transférée : l'artisan a répondu" if critical
                    else "Appel transféré : l'artisan a répondu"), "ok"
        case LeadStatus.BOOKED:
            return f"Rendez-vous pris {when(card.booking_start)}".strip(), "ok"
        case LeadStatus.MESSAGE:
            return ("Message vocal laissé : à écouter" if card.recording else "Message pris : à rappeler"), "warn"
        case LeadStatus.CANCELLED:
            return "Rendez-vous annulé par l'appelant", "info"
        case LeadStatus.INFO:
            return "Renseignement donné, rien à faire", "info"
    return "Appel interrompu avant la fin : à rappeler", "warn"


def problem(card: LeadCard) -> str:
    if card.problem:
        return card.problem
    return "Message vocal (à écouter)" if card.recording else "Problème non précisé"
