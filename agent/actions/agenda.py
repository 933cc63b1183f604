"""The agenda one call sees (the dialogue's `Agenda`): the calendar's busy times, read within a
budget while the greeting plays; the bookings in the store; the slots other calls are offering.

- The calendar lookup starts with the call and has CALENDAR_LOOKUP_BUDGET_S: when it has not
  answered by then (slow or down), the caller is offered a callback, never a guessed slot.
- A slot offered is held for the rest of the call: no other call is offered it.
- Just before a booking is confirmed, the slot is checked again (the store, other calls, and the
  calendar within CALENDAR_CHECK_BUDGET_S; a calendar that does not answer then does not stop the
  booking, which is written to it through the outbox once it is back).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Final

from agent.actions.calendar import CalDavCalendar, CalendarError
from agent.dialogue.dialplan import Dialplan
from agent.dialogue.slots import Slot
from agent.store.db import Store

log = logging.getLogger(__name__)

CALENDAR_LOOKUP_BUDGET_S: Final = 2.0
"""The calendar's busy times must be in within this of the call's start (the greeting plays
meanwhile), seconds; later, the caller is offered a callback."""
CALENDAR_CHECK_BUDGET_S: Final = 0.8
"""The check just before a booking is confirmed waits at most this, seconds."""


class SlotHolds:
    """Slots offered to callers in progress, by call (one per process; the event loop's thread)."""

    def __init__(self) -> None:
        self._by_call: dict[int, list[Slot]] = {}

    def hold(self, call_id: int, slots: Sequence[Slot]) -> None:
        self._by_call.setdefault(call_id, []).extend(slots)

    def release(self, call_id: int) -> None:
        self._by_call.pop(call_id, None)

    def others(self, call_id: int) -> list[Slot]:
        return [s for cid, slots in self._by_call.items() if cid != call_id for s in slots]


class Calendars:
    """The process's calendar and the thread pool its blocking calls run in (a hung server never
    takes the threads the rest of the service uses)."""

    def __init__(self, calendar: CalDavCalendar | None) -> None:
        self.calendar = calendar
        self.holds = SlotHolds()
        self.unreachable = False
        """The last lookup failed (the dashboard says so until one succeeds)."""
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="calendar")

    async def busy(self, start: datetime, end: datetime, budget_s: float) -> list[Slot]:
        assert self.calendar is not None
        loop = asyncio.get_running_loop()
        periods = await asyncio.wait_for(loop.run_in_executor(self._pool, self.calendar.busy, start, end), budget_s)
        return [Slot(a.astimezone(start.tzinfo), b.astimezone(start.tzinfo)) for a, b in periods]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class CallAgenda:
    def __init__(self, plan: Dialplan, call_id: int, store: Store, calendars: Calendars, now: datetime) -> None:
        self.plan = plan
        self.call_id = call_id
        self.store = store
        self.calendars = calendars
        self.now = now
        self._calendar_busy: list[Slot] | None = [] if calendars.calendar is None else None
        self._task: asyncio.Task[None] | None = None
        self.lookup_ms: float | None = None

    def start(self) -> None:
        """Begin the calendar lookup (in the event loop, at the call's start)."""
        if self.calendars.calendar is not None:
            self._task = asyncio.ensure_future(self._lookup())

    async def _lookup(self) -> None:
        t0 = time.monotonic()
        horizon = self.now + timedelta(days=self.plan.booking.horizon_days + 1)
        try:
            self._calendar_busy = await self.calendars.busy(self.now, horizon, CALENDAR_LOOKUP_BUDGET_S)
            self.lookup_ms = (time.monotonic() - t0) * 1000
            self.calendars.unreachable = False
        except (TimeoutError, CalendarError) as exc:
            self.calendars.unreachable = True
            log.warning("call %d: calendar not read within %.1f s (%s): a callback is offered", self.call_id,
                        CALENDAR_LOOKUP_BUDGET_S, type(exc).__name__ or "timeout")

    def _local(self) -> list[Slot]:
        tz = self.plan.timezone
        booked = [Slot(datetime.fromtimestamp(s, tz), datetime.fromtimestamp(e, tz))
                  for s, e in self.store.busy_slots(time.time())]
        return booked + self.calendars.holds.others(self.call_id)

    # --- the dialogue's Agenda -------------------------------------------------------------------------
    def busy(self) -> Sequence[Slot] | None:
        if self._calendar_busy is None:
            return None
        return [*self._calendar_busy, *self._local()]

    def hold(self, slots: Sequence[Slot]) -> None:
        self.calendars.holds.hold(self.call_id, slots)

    async def still_free(self, slot: Slot) -> bool:
        buffer = timedelta(minutes=self.plan.booking.buffer_min)
        if any(_overlaps(slot, b, buffer) for b in self._local()):
            return False
        if self.calendars.calendar is None:
            return True
        try:
            taken = await self.calendars.busy(slot.start - buffer, slot.end + buffer, CALENDAR_CHECK_BUDGET_S)
        except (TimeoutError, CalendarError):
            return True  # not answering now: the booking is queued for it, never refused for that
        return not any(_overlaps(slot, b, buffer) for b in taken)

    def release(self) -> None:
        self.calendars.holds.release(self.call_id)
        if self._task is not None:
            self._task.cancel()


def _overlaps(a: Slot, b: Slot, buffer: timedelta) -> bool:
    return a.start < b.end + buffer and b.start < a.end + buffer
