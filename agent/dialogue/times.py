"""When the caller would like the artisan to come: a day and a window, never a duration.

"depuis hier soir" says how long the problem has lasted and "cette nuit" when it began: neither
is a preference. Public holidays come from the `holidays` package (France, Alsace-Moselle).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

import holidays as holidays_lib

from agent.dialogue.text import digits, has_any

WEEKDAYS: Final = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
MONTHS: Final = ["janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre", "octobre",
                 "novembre", "decembre"]
PARTS_OF_DAY: Final = {"matin": (time(8), time(12)), "matinee": (time(8), time(12)),
                       "midi": (time(11, 30), time(14)), "apres midi": (time(13, 30), time(18)),
                       "fin de journee": (time(16), time(19)), "soir": (time(17), time(20)),
                       "debut d apres midi": (time(13, 30), time(15, 30))}
ASAP: Final = ["des que possible", "au plus vite", "le plus tot possible", "tout de suite", "rapidement",
               "maintenant", "au plus tot", "en urgence"]
PAST: Final = re.compile(
    r"\b(?:depuis|il y a|ca fait|cela fait)(?: (?:le|la|les|l|ce|cet|cette|hier|avant|plus|de|d|au|moins|pres|"
    r"\d+|un|une|deux|trois|quelques|plusieurs|bien|longtemps|semaine|semaines|jour|jours|mois|an|ans|annee|annees|"
    r"heure|heures|minutes|soir|matin|nuit|midi|apres|derniere?|dernier|week end|weekend|lundi|mardi|mercredi|"
    r"jeudi|vendredi|samedi|dimanche|hier|tout|a|l))+"
    r"|\b(?:avant hier|hier soir|hier matin|hier apres midi|hier|cette nuit|la nuit derniere|tout a l heure"
    r"|la semaine derniere|le week end dernier|ce week end)\b")
"""How long something has lasted, or when it happened: removed before looking for a preference."""


@dataclass(frozen=True)
class When:
    """A caller's time preference: a day (or None = any) and a window on it."""

    day: date | None
    start: time
    end: time
    asap: bool = False


def without_past(folded_digits: str) -> str:
    return " ".join(PAST.sub(" ", folded_digits).split())


def when(text: str, now: datetime) -> When | None:
    f = without_past(digits(text))
    today = now.date()
    asap = has_any(f, ASAP)
    day = _day(f, today)
    start, end = time(0), time(23, 59)
    found_time = False
    m = re.search(r"\b(?:vers |a |pour |des |avant |apres )?(\d{1,2}) ?(?:h|heures?)(?: ?(\d{2}))?\b", f)
    if m and int(m.group(1)) < 24:
        h, mi = int(m.group(1)), int(m.group(2) or 0)
        if 1 <= h <= 7 and has_any(f, ["apres midi", "soir"]):
            h += 12
        t = time(h, mi)
        lead = f[max(0, m.start() - 7):m.start() + 6]
        if "avant" in lead:
            start, end = time(0), t
        elif "apres" in lead and "apres midi" not in lead:
            start, end = t, time(23, 59)
        else:
            base = datetime.combine(today, t)
            start, end = (base - timedelta(minutes=60)).time(), (base + timedelta(minutes=60)).time()
            if "vers" not in lead:
                start, end = t, (base + timedelta(minutes=59)).time()
        found_time = True
    else:
        for part, (a, b) in sorted(PARTS_OF_DAY.items(), key=lambda kv: -len(kv[0])):
            if has_any(f, [part]):
                start, end = a, b
                found_time = True
                break
    if day is None and not found_time and not asap:
        return None
    return When(day, start, end, asap)


def _day(f: str, today: date) -> date | None:
    if has_any(f, ["apres demain"]):
        return today + timedelta(days=2)
    if has_any(f, ["demain"]):
        return today + timedelta(days=1)
    if has_any(f, ["aujourd hui", "ce matin", "cet apres midi", "ce soir", "dans la journee"]):
        return today
    m = re.search(rf"\b(\d{{1,2}}|1er|premier) ({'|'.join(MONTHS)})\b", f)
    if m:
        d = 1 if m.group(1) in ("1er", "premier") else int(m.group(1))
        month = MONTHS.index(m.group(2)) + 1
        year = today.year + (1 if (month, d) < (today.month, today.day) else 0)
        try:
            return date(year, month, d)
        except ValueError:
            return None
    for i, wd in enumerate(WEEKDAYS):
        if re.search(rf"\b{wd}\b", f):
            return today + timedelta(days=(i - today.weekday()) % 7 or 7)
    return None


HOLIDAY_REGIONS: Final = {"france": None, "alsace-moselle": "57", "none": ""}


def public_holidays(region: str, years: range) -> frozenset[date]:
    """France's public holidays for these years (with Alsace-Moselle's two more), or none."""
    subdiv = HOLIDAY_REGIONS[region]
    if subdiv == "":
        return frozenset()
    return frozenset(holidays_lib.country_holidays("FR", subdiv=subdiv, years=years))
