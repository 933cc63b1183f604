"""Issue 10, the calendar: free slots from a real CalDAV server (Radicale), a callback when it is
down, offered slots held per call, the check before booking, and the event written with its lead
card, through the outbox, once the server is back."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from agent.actions.agenda import Calendars, CallAgenda
from agent.actions.booking_outcome import apply_booking
from agent.actions.calendar import CalDavCalendar, CalDavSettings, CalendarRoute
from agent.actions.delivery import Outbox, RetryPolicy, Sender
from agent.devtools.radicale import CALENDAR, PASSWORD, USER, Radicale
from agent.dialogue.dialplan import builtin_dialplan
from agent.dialogue.lead import Outcome, Upcoming
from agent.dialogue.phrases import AGENDA_UNAVAILABLE, SLOT_JUST_TAKEN
from agent.dialogue.policy import Conversation
from agent.dialogue.slots import Slot
from agent.dialogue.state import Action
from agent.store.db import Store
from agent.store.outbox import messages
from agent.store.schema import LeadStatus

PLAN = builtin_dialplan("plombier")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=PLAN.timezone)  # a Tuesday
TURNS = ("Bonjour, mon évier est bouché depuis ce matin.", "Jean Martin.", "12 avenue Jean Médecin à Nice.",
         "Oui c'est ça.")


def _calendar(server: Radicale) -> CalDavCalendar:
    return CalDavCalendar(CalDavSettings(server.url, USER, PASSWORD, CALENDAR, timeout_s=2))


async def _offer(agenda: CallAgenda) -> tuple[Conversation, str]:
    """A normal call up to the slots offered."""
    conv = Conversation(PLAN, NOW, "+33612345678", agenda=agenda)
    conv.start()
    agenda.start()
    await asyncio.sleep(0)
    reply = ""
    for text in TURNS:
        if agenda._task is not None:
            await agenda._task
        reply = await conv.turn(text)
    return conv, reply


def test_busy_events_make_their_slots_unavailable(radicale: Radicale, tmp_path: Path) -> None:
    first_free = datetime(2026, 12, 1, 10, 30, tzinfo=PLAN.timezone)
    cal = radicale.calendar()
    cal.save_event(dtstart=first_free, dtend=first_free + timedelta(hours=3), uid="chantier-1", summary="Chantier")
    store = Store(tmp_path / "s.db")
    calendars = Calendars(_calendar(radicale))

    async def go() -> Conversation:
        conv, reply = await _offer(CallAgenda(PLAN, 1, store, calendars, NOW))
        assert "Je peux vous proposer un passage" in reply, reply
        return conv
    conv = asyncio.run(go())
    assert conv.offered and all(s.start >= first_free + timedelta(hours=3, minutes=30) or
                                s.end + timedelta(minutes=30) <= first_free for s in conv.offered)
    store.close()


def test_a_calendar_that_is_down_gets_the_caller_a_callback(radicale: Radicale, tmp_path: Path) -> None:
    radicale.stop()
    store = Store(tmp_path / "s.db")
    got: dict[str, str] = {}

    async def go() -> tuple[Conversation, str]:
        agenda = CallAgenda(PLAN, 1, store, Calendars(_calendar(radicale)), NOW)
        conv = Conversation(PLAN, NOW, "+33612345678", agenda=agenda, on_field=lambda k, v: got.update({k: v}))
        conv.start()
        agenda.start()
        reply = ""
        for text in TURNS:
            if agenda._task is not None:
                await asyncio.wait([agenda._task])
            reply = await conv.turn(text)
        return conv, reply
    conv, reply = asyncio.run(go())
    assert AGENDA_UNAVAILABLE in reply and conv.outcome.action is Action.MESSAGE
    assert got["reason"] == "agenda unavailable"
    store.close()


def test_two_calls_are_never_offered_the_same_slot(radicale: Radicale, tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    calendars = Calendars(_calendar(radicale))

    async def go() -> tuple[Conversation, Conversation]:
        a, _ = await _offer(CallAgenda(PLAN, 1, store, calendars, NOW))
        b, _ = await _offer(CallAgenda(PLAN, 2, store, calendars, NOW))
        return a, b
    a, b = asyncio.run(go())
    assert a.offered and b.offered and not {s.start for s in a.offered} & {s.start for s in b.offered}
    store.close()


def test_a_slot_taken_in_the_calendar_meanwhile_is_not_booked(radicale: Radicale, tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")

    async def go() -> tuple[Conversation, str, str]:
        conv, _ = await _offer(CallAgenda(PLAN, 1, store, Calendars(_calendar(radicale)), NOW))
        taken = conv.offered[0]
        # The artisan adds a job on their phone while the caller thinks.
        radicale.calendar().save_event(dtstart=taken.start, dtend=taken.end, uid="perso", summary="Dentiste")
        reply = await conv.turn("Le premier.")
        return conv, reply, taken.start.isoformat()
    conv, reply, taken = asyncio.run(go())
    assert reply.startswith(SLOT_JUST_TAKEN) and conv.outcome.action is None
    assert all(s.start.isoformat() != taken for s in conv.offered)
    store.close()


def test_the_booking_reaches_the_calendar_once_it_is_back(radicale: Radicale, tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    calendar = _calendar(radicale)

    async def book() -> int:
        call_id = await store.open_call(channel_id="1.1", did="", caller_id="+33612345678", dialplan=PLAN.file,
                                        trade="plombier", business=PLAN.business)
        store.set_lead(call_id, name="Jean Martin", address="12 avenue Jean Médecin, Nice", phone="+33612345678",
                       problem="canalisation bouchée : Mon évier est bouché", status=LeadStatus.BOOKED).result()
        start = datetime(2026, 12, 2, 8, 0, tzinfo=PLAN.timezone)
        store.hold_slot(call_id, start.timestamp(), (start + timedelta(hours=1)).timestamp(),
                        then=Outbox("none", calendar=True).booking(PLAN, call_id, start,
                                                                  start + timedelta(hours=1))).result()
        return call_id
    radicale.stop()
    call_id = asyncio.run(book())
    sender = Sender(store, [CalendarRoute(calendar)], RetryPolicy(max_attempts=10, first_retry_s=0.05,
                                                                  max_retry_s=0.1))
    asyncio.run(sender.tick())
    row = store.read(lambda c: messages(c, call_id))[0]
    assert (row["kind"], row["state"], row["attempts"]) == ("event", "pending", 1)
    radicale.start()

    async def drain() -> None:
        for _ in range(40):
            await sender.tick()
            if store.read(lambda c: messages(c, call_id))[0]["state"] == "sent":
                return
            await asyncio.sleep(0.1)
    asyncio.run(drain())
    row = store.read(lambda c: messages(c, call_id))[0]
    assert row["state"] == "sent"
    event = calendar.get(row["recipient"])
    assert event is not None and event["start"] == datetime(2026, 12, 2, 8, 0, tzinfo=PLAN.timezone)
    assert event["summary"] == "[normal] Jean Martin : canalisation bouchée : Mon évier est bouché"
    assert "Téléphone : 06 12 34 56 78" in event["description"] and event["location"] == "12 avenue Jean Médecin, Nice"
    # Written again (a retry after a crash): the same event, not a second one.
    asyncio.run(CalendarRoute(calendar).send(row["key"], row["recipient"], row["body"]))
    assert len(radicale.calendar().search(event=True)) == 1
    store.close()


# --- a returning caller ---------------------------------------------------------------------------
def _booked_call(store: Store, outbox: Outbox, start: datetime) -> int:
    async def first() -> int:
        call_id = await store.open_call(channel_id="1.1", did="", caller_id="+33612345678", dialplan=PLAN.file,
                                        trade="plombier", business=PLAN.business)
        store.set_lead(call_id, name="Jean Martin", address="12 avenue Jean Médecin, Nice", phone="+33612345678",
                       problem="canalisation bouchée", status=LeadStatus.BOOKED).result()
        outcome = Outcome(Action.BOOKING, booking=Slot(start, start + timedelta(hours=1)))
        done = apply_booking(store, outbox, PLAN, call_id, outcome)
        assert done is not None
        done.result()
        return call_id
    return asyncio.run(first())


def _returning(store: Store, calendars: Calendars, says: list[str]) -> tuple[Conversation, list[str], int]:
    async def call() -> tuple[Conversation, list[str], int]:
        call_id = await store.open_call(channel_id="2.1", did="", caller_id="+33612345678", dialplan=PLAN.file,
                                        trade="plombier", business=PLAN.business)
        row = store.upcoming_booking("+33612345678", PLAN.file, NOW.timestamp())
        assert row is not None
        upcoming = Upcoming(row["call_id"], Slot(datetime.fromtimestamp(row["booking_start"], PLAN.timezone),
                                                 datetime.fromtimestamp(row["booking_end"], PLAN.timezone)),
                            row["name"], row["address"], row["problem"])
        agenda = CallAgenda(PLAN, call_id, store, calendars, NOW)
        agenda.start()
        conv = Conversation(PLAN, NOW, "+33612345678", agenda=agenda, upcoming=upcoming)
        replies = [conv.start()]
        if agenda._task is not None:
            await agenda._task
        for text in says:
            replies.append(await conv.turn(text))
        return conv, replies, call_id
    return asyncio.run(call())


def _drain(store: Store, sender: Sender) -> None:
    async def go() -> None:
        for _ in range(40):
            await sender.tick()
            if not store.read(lambda c: c.execute("SELECT count(*) FROM outbox WHERE route = 'calendar' "
                                                  "AND state != 'sent'").fetchone()[0]):
                return
            await asyncio.sleep(0.05)
    asyncio.run(go())


def test_a_returning_caller_moves_the_booking_and_the_event_moves(radicale: Radicale, tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    calendar = _calendar(radicale)
    outbox = Outbox("http", calendar=True)
    sender = Sender(store, [CalendarRoute(calendar)], RetryPolicy(first_retry_s=0.05, max_retry_s=0.1))
    old = datetime(2026, 12, 3, 8, 0, tzinfo=PLAN.timezone)
    first = _booked_call(store, outbox, old)
    _drain(store, sender)
    conv, replies, second = _returning(store, Calendars(calendar), ["Oui, je voudrais le déplacer", "Le premier."])
    assert "Vous avez rendez-vous jeudi 3 décembre à 8 h. Voulez-vous le déplacer ou l'annuler ?" in replies[0]
    assert "Je peux vous proposer un passage" in replies[1] and replies[2].startswith("C'est réservé")
    assert conv.outcome.action is Action.BOOKING and conv.outcome.moves == first
    new = conv.outcome.booking
    assert new is not None and new.start != old
    done = apply_booking(store, outbox, PLAN, second, conv.outcome)
    assert done is not None
    done.result()
    _drain(store, sender)
    uid = store.read(lambda c: messages(c, first))[0]["recipient"]
    event = calendar.get(uid)
    assert event is not None and event["start"] == new.start  # the same event, moved
    assert len(radicale.calendar().search(event=True)) == 1
    held = store.read(lambda c: [tuple(r) for r in c.execute("SELECT call_id, start FROM bookings")])
    assert held == [(first, new.start.timestamp())]
    kinds = {m["kind"]: m for m in store.read(lambda c: messages(c, second))}
    assert kinds["artisan_moved"]["body"].startswith("RDV déplacé au ")
    assert "RDV confirmé" in kinds["caller"]["body"]
    store.close()


def test_a_returning_caller_cancels_and_the_event_is_removed(radicale: Radicale, tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    calendar = _calendar(radicale)
    outbox = Outbox("http", calendar=True)
    sender = Sender(store, [CalendarRoute(calendar)], RetryPolicy(first_retry_s=0.05, max_retry_s=0.1))
    first = _booked_call(store, outbox, datetime(2026, 12, 3, 8, 0, tzinfo=PLAN.timezone))
    _drain(store, sender)
    conv, replies, second = _returning(store, Calendars(calendar), ["Il faut l'annuler, c'est réparé"])
    assert conv.outcome.action is Action.CANCEL and "est annulé" in replies[1]
    done = apply_booking(store, outbox, PLAN, second, conv.outcome)
    assert done is not None
    done.result()
    _drain(store, sender)
    assert radicale.calendar().search(event=True) == []
    assert store.read(lambda c: c.execute("SELECT count(*) FROM bookings").fetchone()[0]) == 0
    assert store.read(lambda c: c.execute("SELECT status FROM leads WHERE call_id = ?", (first,)).fetchone()[0]) \
        == "cancelled"
    assert [m["kind"] for m in store.read(lambda c: messages(c, second)) if m["route"] != "calendar"] == [
        "artisan_cancelled"]
    store.close()


def test_a_returning_caller_calling_about_something_else_is_heard_as_anyone() -> None:
    upcoming = Upcoming(1, Slot(datetime(2026, 12, 3, 8, 0, tzinfo=PLAN.timezone),
                                datetime(2026, 12, 3, 9, 0, tzinfo=PLAN.timezone)), "Jean Martin", None, None)
    conv = Conversation(PLAN, NOW, "+33612345678", upcoming=upcoming)
    conv.start()
    reply = asyncio.run(conv.turn("Non, c'est pour autre chose, j'ai une fuite sous l'évier"))
    assert conv.outcome.moves is None and conv.lead.problem is not None and "fuite" in conv.lead.problem.lower()
    assert "rendez-vous" not in reply


def test_a_calendar_that_does_not_answer_in_time_gets_the_caller_a_callback(tmp_path: Path) -> None:
    """A server that accepts the connection and never answers: the lookup's budget decides."""
    import socket
    import threading
    import time

    from agent.actions.agenda import CALENDAR_LOOKUP_BUDGET_S

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: [held.append(listener.accept()[0]) for _ in range(8)], daemon=True).start()
    slow = CalDavCalendar(CalDavSettings(f"http://127.0.0.1:{listener.getsockname()[1]}/", USER, PASSWORD,
                                         CALENDAR, timeout_s=10))
    store = Store(tmp_path / "s.db")

    async def go() -> tuple[str, float]:
        agenda = CallAgenda(PLAN, 1, store, Calendars(slow), NOW)
        conv = Conversation(PLAN, NOW, "+33612345678", agenda=agenda)
        conv.start()
        t0 = time.monotonic()
        agenda.start()
        assert agenda._task is not None
        await asyncio.wait([agenda._task])
        waited = time.monotonic() - t0
        reply = ""
        for text in TURNS:
            reply = await conv.turn(text)
        return reply, waited
    reply, waited = asyncio.run(go())
    assert AGENDA_UNAVAILABLE in reply
    assert CALENDAR_LOOKUP_BUDGET_S <= waited < CALENDAR_LOOKUP_BUDGET_S + 0.5
    store.close()
    listener.close()
