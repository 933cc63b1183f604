"""The artisan's calendar: `local` (the store's own bookings) or `caldav` (any CalDAV server:
Nextcloud, Radicale, iCloud, SOGo, Baïkal, Google through a bridge), with the `caldav` library.

The CalDAV calls are blocking: the agenda (agent/actions/agenda.py) runs them in a thread within a
time budget, and a booking reaches the calendar through the outbox (route `calendar`) with the
same retries as an SMS. An event's UID is stable: writing it again replaces it, never duplicates it.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from agent.actions.routes import RouteError

log = logging.getLogger(__name__)

CALENDAR_ROUTE: Final = "calendar"
"""The outbox route name of calendar writes."""


class CalendarError(Exception):
    """The calendar could not be read or written (down, refused, not found)."""


@dataclass(frozen=True)
class CalDavSettings:
    url: str
    username: str
    password: str
    calendar: str
    """The calendar's display name, or its URL."""
    timeout_s: float = 5.0


@dataclass(frozen=True)
class EventCard:
    uid: str
    start: datetime
    end: datetime
    summary: str
    description: str
    location: str

    def to_json(self) -> str:
        return json.dumps({"uid": self.uid, "start": self.start.isoformat(), "end": self.end.isoformat(),
                           "summary": self.summary, "description": self.description, "location": self.location},
                          ensure_ascii=False)

    @staticmethod
    def from_json(text: str) -> EventCard:
        d = json.loads(text)
        return EventCard(d["uid"], datetime.fromisoformat(d["start"]), datetime.fromisoformat(d["end"]),
                         d["summary"], d["description"], d["location"])


class CalDavCalendar:
    """One CalDAV calendar. Thread-safe: one connection, used under a lock."""

    name = "caldav"

    def __init__(self, settings: CalDavSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._calendar: Any = None

    def _cal(self) -> Any:
        if self._calendar is None:
            import caldav

            s = self.settings
            dav: Any = caldav.DAVClient
            client = dav(s.url, username=s.username, password=s.password, timeout=max(1, int(s.timeout_s)),
                         require_tls=False, enable_rfc6764=False)
            principal = client.principal()
            found = [c for c in principal.calendars()
                     if s.calendar in (c.get_display_name(), str(c.url), str(c.url).rstrip("/"))]
            if not found:
                raise CalendarError(f"no calendar named {s.calendar!r} for this user")
            self._calendar = found[0]
        return self._calendar

    def busy(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Busy periods between start and end: the server's free-busy answer, or its events."""
        with self._lock:
            try:
                return self._busy(start, end)
            except CalendarError:
                raise
            except Exception as exc:  # the library raises many kinds: all mean "could not read"
                self._calendar = None
                raise CalendarError(f"{type(exc).__name__}") from None

    def _busy(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        cal = self._cal()
        try:
            fb = cal.freebusy_request(start, end)
            return _freebusy_periods(fb.icalendar_instance)
        except Exception as exc:  # no free-busy on this server: read the events instead
            log.debug("calendar: no free-busy (%s), reading events", type(exc).__name__)
        out = []
        for ev in cal.search(start=start, end=end, event=True, expand=True):
            comp = ev.icalendar_component
            if str(comp.get("transp", "OPAQUE")).upper() == "TRANSPARENT":
                continue
            s, e = comp.get("dtstart").dt, comp.get("dtend")
            s_dt = _as_datetime(s, start)
            e_dt = _as_datetime(e.dt, start) if e is not None else s_dt + timedelta(hours=1)
            out.append((s_dt, e_dt))
        return out

    def put(self, event: EventCard) -> None:
        """Create the event, or replace the one with its UID."""
        with self._lock:
            try:
                cal = self._cal()
                cal.save_event(ical=_ical(event))
            except Exception as exc:
                self._calendar = None
                raise CalendarError(type(exc).__name__) from None

    def delete(self, uid: str) -> None:
        """Remove the event with this UID (already gone is fine)."""
        with self._lock:
            try:
                cal = self._cal()
            except Exception as exc:
                self._calendar = None
                raise CalendarError(type(exc).__name__) from None
            from caldav.lib.error import NotFoundError

            try:
                ev = cal.event_by_uid(uid)
                ev.delete()
            except NotFoundError:
                return  # not there (any more)
            except Exception as exc:
                self._calendar = None
                raise CalendarError(type(exc).__name__) from None

    def get(self, uid: str) -> dict[str, Any] | None:
        """The event with this UID as a dict (tests, the dashboard), None if absent."""
        with self._lock:
            try:
                ev = self._cal().event_by_uid(uid)
            except Exception:
                return None
            comp = ev.icalendar_component
            return {"summary": str(comp.get("summary")), "description": str(comp.get("description")),
                    "location": str(comp.get("location")), "start": comp.get("dtstart").dt,
                    "end": comp.get("dtend").dt}


def _as_datetime(value: Any, like: datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=like.tzinfo)
    return datetime.combine(value, datetime.min.time(), like.tzinfo)  # an all-day event


def _freebusy_periods(cal: Any) -> list[tuple[datetime, datetime]]:
    out = []
    for comp in cal.walk("VFREEBUSY"):
        periods = comp.get("freebusy") or []
        for prop in periods if isinstance(periods, list) else [periods]:
            fbtype = str(prop.params.get("FBTYPE", "BUSY")).upper()
            if fbtype == "FREE":
                continue
            for period in prop.dt if isinstance(prop.dt, list) else [prop.dt]:
                start, end = period
                out.append((start, end if isinstance(end, datetime) else start + end))
    return out


def _ical(event: EventCard) -> str:
    from icalendar import Calendar, Event

    cal = Calendar()
    cal.add("prodid", "-//Standardiste//FR")
    cal.add("version", "2.0")
    ev = Event()
    ev.add("uid", event.uid)
    # In UTC ("...Z"): a fixed offset read back from JSON would otherwise be written as floating time.
    ev.add("dtstamp", datetime.now(UTC))
    ev.add("dtstart", event.start.astimezone(UTC))
    ev.add("dtend", event.end.astimezone(UTC))
    ev.add("summary", event.summary)
    ev.add("description", event.description)
    ev.add("location", event.location)
    cal.add_component(ev)
    return str(cal.to_ical().decode("utf-8"))


class CalendarRoute:
    """The outbox route that writes bookings to the calendar (the body is the EventCard's JSON)."""

    name = CALENDAR_ROUTE

    def __init__(self, calendar: CalDavCalendar) -> None:
        self.calendar = calendar

    async def send(self, key: str, to: str, body: str, kind: str = "") -> None:
        import asyncio

        try:
            if json.loads(body).get("delete"):
                await asyncio.to_thread(self.calendar.delete, to)
            else:
                await asyncio.to_thread(self.calendar.put, EventCard.from_json(body))
        except CalendarError as exc:
            raise RouteError(f"calendar: {exc}", retryable=True) from None

    async def close(self) -> None:
        pass
