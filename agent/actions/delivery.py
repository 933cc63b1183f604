"""The outbox sender: delivers the SMS (and the calendar's bookings) the store holds, with capped
exponential backoff.

At start it puts back to pending what a previous process was sending when it stopped; then it
claims due messages (marked `sending` in the same transaction), hands each to its route, and
settles it: sent, tried again later (1st retry after `first_retry_s`, doubling up to `max_retry_s`),
or failed after `max_attempts` or a refusal for good. A route that is down loses nothing; a restart
resumes the outbox. The day's digests are queued here too.

Logs name the message's key, kind and route, never a number or a text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from agent.actions import sms as sms_rules
from agent.actions.calendar import CALENDAR_ROUTE
from agent.actions.routes import NO_ROUTE, MessageKind, Route, RouteError, Via, via
from agent.dialogue.dialplan import Dialplan
from agent.store.db import Store
from agent.store.outbox import Sms, claim_due, enqueue, mark_failed, mark_retry, mark_sent, recover
from agent.store.rows import record_action

log = logging.getLogger(__name__)

POLL_S: Final = 1.0
"""Longest a due message waits when nobody pokes the sender, seconds."""
SEND_TIMEOUT_S: Final = 30.0
"""A route call taking longer counts as a failed try, seconds."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    first_retry_s: float = 5.0
    max_retry_s: float = 600.0

    def delay(self, attempts: int) -> float:
        """Wait before the next try after `attempts` tries."""
        return float(min(self.max_retry_s, self.first_retry_s * 2 ** max(0, attempts - 1)))


class Sender:
    def __init__(self, store: Store, routes: Route | Sequence[Route], policy: RetryPolicy,
                 plans: Sequence[Dialplan] = (), clock: Callable[[], float] = time.time,
                 settings: object = None) -> None:
        self.store = store
        self.routes = {r.name: r for r in ([routes] if not isinstance(routes, Sequence) else routes)}
        sms_route = next((name for name in self.routes if name != CALENDAR_ROUTE), NO_ROUTE)
        self.vias = {p.file: via(sms_route, settings, p) for p in plans}
        self.policy = policy
        self.plans = [p for p in plans if p.sms.digest is not None and self.vias[p.file].artisan]
        """Only the dialplans that ask for a daily digest: the others cost no store write each poll."""
        self.clock = clock
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def poke(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        self._wake.set()

    def poke_threadsafe(self) -> None:
        """poke() from any thread (the store's writer calls back from its own)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        back = await self.store.run(recover)
        if back:
            log.info("sms: %d message(s) left in flight by the last run are pending again", back)
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:  # the store or a bug: keep the service up, try again next poll
                log.error("sms sender: %s", type(exc).__name__)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)

    async def tick(self) -> int:
        """Queue due digests, then send what is due; returns how many were tried."""
        now = self.clock()
        for plan in self.plans:
            await self.store.run(self._digest(plan, datetime.fromtimestamp(now, plan.timezone)))
        due = await self.store.run(lambda conn: claim_due(conn, now))
        for message in due:
            await self._send(message)
        return len(due)

    def _digest(self, plan: Dialplan, when: datetime) -> Callable[[sqlite3.Connection], bool]:
        return lambda conn: sms_rules.digest(conn, plan, when, self.vias[plan.file])

    async def _send(self, message: Sms) -> None:
        route = self.routes.get(message.route)
        try:
            if route is None:
                raise RouteError(f"route {message.route} is not configured any more", retryable=False)
            await asyncio.wait_for(route.send(message.key, message.recipient, message.body, message.kind),
                                   SEND_TIMEOUT_S)
        except (RouteError, TimeoutError) as exc:
            retryable = exc.retryable if isinstance(exc, RouteError) else True
            error = str(exc) or type(exc).__name__
            if retryable and message.attempts < self.policy.max_attempts:
                wait = self.policy.delay(message.attempts)
                await self.store.run(lambda conn: mark_retry(conn, message.id, self.clock() + wait, error))
                log.warning("outbox %s (%s) via %s: %s; try %d of %d in %.0f s", message.key, message.kind,
                            message.route, error, message.attempts + 1, self.policy.max_attempts, wait)
            else:
                await self.store.run(lambda conn: mark_failed(conn, message.id, error))
                log.error("outbox %s (%s) via %s: given up after %d tries: %s", message.key, message.kind,
                          message.route, message.attempts, error)
            return
        await self.store.run(lambda conn: mark_sent(conn, message.id))
        log.info("outbox %s (%s) sent via %s", message.key, message.kind, message.route)

    async def close(self) -> None:
        for route in self.routes.values():
            await route.close()


class Outbox:
    """What the call sessions use: queue a call's SMS in the transaction of its event, and wake the
    sender. With no route configured nothing is queued, and the call's actions say so."""

    def __init__(self, route: str = NO_ROUTE, sender: Sender | None = None, *, calendar: bool = False,
                 settings: object = None) -> None:
        self.route = route
        self.settings = settings
        """The route's settings (where the artisan's messages go, for the e-mail route)."""
        self.sender = sender
        self.calendar = calendar
        """Bookings go to a CalDAV calendar (through the outbox), not only to the store."""

    @property
    def enabled(self) -> bool:
        return self.route != NO_ROUTE

    def via(self, plan: Dialplan) -> Via:
        return via(self.route, self.settings, plan)

    def after_call(self, plan: Dialplan, call_id: int) -> Callable[[sqlite3.Connection], None]:
        """To run inside the call's closing write (Store.end_call)."""
        def write(conn: sqlite3.Connection) -> None:
            if not self.enabled:
                record_action(conn, call_id, "sms", "not sent", "no SMS route configured")
                return
            for kind in sms_rules.after_call(conn, plan, call_id, self.via(plan)):
                record_action(conn, call_id, "sms", "queued", kind)
        return write

    def booking(self, plan: Dialplan, call_id: int, start: datetime, end: datetime) -> Callable[
            [sqlite3.Connection], None]:
        """To run inside the booking's write (Store.hold_slot): the event for the calendar, queued."""
        def write(conn: sqlite3.Connection) -> None:
            if self.calendar and sms_rules.event(conn, plan, call_id, start, end):
                record_action(conn, call_id, "calendar", "queued", "event")
        return write

    def moved(self, plan: Dialplan, booked_by: int, call_id: int, start: datetime, end: datetime) -> Callable[
            [sqlite3.Connection], None]:
        """To run inside Store.move_booking: the event moved (same UID), the artisan and the caller told."""
        def write(conn: sqlite3.Connection) -> None:
            if self.calendar and sms_rules.event(conn, plan, booked_by, start, end,
                                                 key=f"{booked_by}:event:moved:{call_id}"):
                record_action(conn, call_id, "calendar", "queued", "event moved")
            for kind in sms_rules.moved(conn, plan, booked_by, call_id, self.via(plan)):
                record_action(conn, call_id, "sms", "queued", kind)
        return write

    def cancelled(self, plan: Dialplan, booked_by: int, call_id: int) -> Callable[[sqlite3.Connection], None]:
        """To run inside Store.cancel_booking: the event removed, the artisan told."""
        def write(conn: sqlite3.Connection) -> None:
            if self.calendar:
                uid = sms_rules.event_uid(conn, plan, booked_by)
                if enqueue(conn, key=f"{booked_by}:event:cancelled", call_id=call_id, kind=MessageKind.EVENT_CANCELLED,
                           route=CALENDAR_ROUTE, recipient=uid, body=json.dumps({"delete": uid})):
                    record_action(conn, call_id, "calendar", "queued", "event removed")
            for kind in sms_rules.cancelled(conn, plan, booked_by, call_id, self.via(plan)):
                record_action(conn, call_id, "sms", "queued", kind)
        return write

    def unreached(self, store: Store, plan: Dialplan, call_id: int) -> None:
        """A critical call the artisan did not answer: "URGENT non joint", queued now."""
        def write(conn: sqlite3.Connection) -> None:
            if not self.enabled:
                record_action(conn, call_id, "sms", "not sent", "no SMS route configured")
            elif sms_rules.unreached(conn, plan, call_id, self.via(plan)):
                record_action(conn, call_id, "sms", "queued", "artisan_unreached")
        store.submit(write).add_done_callback(lambda _f: self.poke())

    def poke(self) -> None:
        if self.sender is not None:
            self.sender.poke_threadsafe()
