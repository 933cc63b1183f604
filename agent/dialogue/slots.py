"""Free appointment slots from the artisan's working hours, holidays and existing bookings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Protocol

from agent.dialogue.dialplan import Booking, Dialplan
from agent.dialogue.text import digits, has_any
from agent.dialogue.times import When, when

STEP_MIN: Final = 30
"""Slots start on the hour or the half hour."""
WEEKDAY_NAMES: Final = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
MONTH_NAMES: Final = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
                      "octobre", "novembre", "décembre"]


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime


class Agenda(Protocol):
    """The artisan's agenda as one call sees it (the session provides it; see agent/actions/agenda.py)."""

    def busy(self) -> Sequence[Slot] | None:
        """What is taken: the calendar's busy times, the bookings, the slots other calls are offering.
        None when the calendar could not be read within its budget: offer a callback, not a slot."""

    def hold(self, slots: Sequence[Slot]) -> None:
        """These slots are offered to this caller: no other call is offered them while it lasts."""

    async def still_free(self, slot: Slot) -> bool:
        """Checked again just before the booking is confirmed (someone may have taken it meanwhile)."""


def free_slots(plan: Dialplan, now: datetime, busy: Sequence[Slot], *, urgent: bool, pref: When | None,
               count: int | None = None) -> list[Slot]:
    """The first free slots at or after now + notice, inside working windows, away from busy ones
    by the buffer, matching the caller's preference when there is one; one per half-day at most
    so the choice offered is a real choice."""
    bk: Booking = plan.booking
    tz = plan.timezone
    now = now.astimezone(tz)
    duration = timedelta(minutes=bk.urgent_duration_min if urgent else bk.duration_min)
    buffer = timedelta(minutes=bk.buffer_min)
    earliest = now + timedelta(minutes=bk.min_notice_min if not urgent else min(bk.min_notice_min, 60))
    count = count or bk.slots_offered
    out: list[Slot] = []
    halves: set[tuple[date, bool]] = set()
    for offset in range(bk.horizon_days + 1):
        day = now.date() + timedelta(days=offset)
        if day in plan.holidays:
            continue
        if pref is not None and pref.day is not None and day != pref.day:
            continue
        for w_start, w_end in bk.hours.get(day.weekday(), ()):
            t = datetime.combine(day, w_start, tz)
            stop = datetime.combine(day, w_end, tz)
            while t + duration <= stop:
                if t >= earliest and _fits(t, t + duration, busy, buffer) and _matches(t, t + duration, pref):
                    half = (day, t.hour >= 13)
                    if half not in halves:
                        out.append(Slot(t, t + duration))
                        halves.add(half)
                        if len(out) >= count:
                            return out
                t += timedelta(minutes=STEP_MIN)
    return out


def _fits(start: datetime, end: datetime, busy: Sequence[Slot], buffer: timedelta) -> bool:
    return all(end + buffer <= b.start or start >= b.end + buffer for b in busy)


def _matches(start: datetime, end: datetime, pref: When | None) -> bool:
    if pref is None:
        return True
    return start.time() >= pref.start and start.time() <= pref.end


def say_slot(slot: Slot, now: datetime) -> str:
    """'aujourd'hui à 16 h 30', 'demain à 8 h', 'lundi 30 novembre à 14 h'."""
    start = slot.start
    today = now.astimezone(start.tzinfo).date()
    hour = f"{start.hour} h" + (f" {start.minute:02d}" if start.minute else "")
    if start.date() == today:
        return f"aujourd'hui à {hour}"
    if start.date() == today + timedelta(days=1):
        return f"demain à {hour}"
    return f"{WEEKDAY_NAMES[start.weekday()]} {start.day} {MONTH_NAMES[start.month - 1]} à {hour}"


def pick(text: str, slots: Sequence[Slot], now: datetime) -> Slot | None:
    """Which offered slot the caller chose: 'le premier', 'la deuxième', '16 h', 'demain', 'oui'."""
    f = digits(text)
    if not slots:
        return None
    wanted = when(text, now)
    if wanted is not None and wanted.day is not None:
        # A day was named: only an offered slot on that day (and in that window) is a choice.
        return next((s for s in slots if s.start.date() == wanted.day
                     and wanted.start <= s.start.time() <= wanted.end), None)
    if has_any(f, ["premier", "premiere", "1er", "le 1", "la 1", "la plus tot", "le plus tot"]):
        return slots[0]
    if len(slots) > 1 and has_any(f, ["deuxieme", "second", "seconde", "2eme", "l autre", "le dernier",
                                      "la derniere", "le 2", "la 2"]):
        return slots[1]
    m = re.search(r"\b(\d{1,2}) ?(?:h|heures?)(?: ?(\d{2}))?\b", f)
    if m:
        for s in slots:
            if s.start.hour == int(m.group(1)) and (m.group(2) is None or s.start.minute == int(m.group(2))):
                return s
    today = now.astimezone(slots[0].start.tzinfo).date()
    for s in slots:
        if (has_any(f, ["demain"]) and s.start.date() == today + timedelta(days=1)) or (
                has_any(f, ["aujourd hui", "ce soir", "cet apres midi"]) and s.start.date() == today) or (
                has_any(f, [WEEKDAY_NAMES[s.start.weekday()]])):
            return s
    if re.match(r"^(oui|ok|d accord|parfait|ca me va|tres bien|va pour|volontiers|c est parfait)\b", f):
        return slots[0]
    return None


def in_hours(plan: Dialplan, now: datetime) -> bool:
    local = now.astimezone(plan.timezone)
    if local.date() in plan.holidays:
        return False
    t = local.time()
    return any(a <= t <= b for a, b in plan.hours.get(local.weekday(), ()))

