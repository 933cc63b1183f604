"""The dialogue's side of a transfer: on request, and what comes after one that failed."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

from agent.dialogue.dialplan import builtin_dialplan
from agent.dialogue.policy import Conversation
from agent.dialogue.state import Action, Severity

NOW = datetime(2026, 11, 26, 10, 5, tzinfo=ZoneInfo("Europe/Paris"))  # a Thursday, open


def _plan(**transfer: object):  # type: ignore[no-untyped-def]
    plan = builtin_dialplan("plombier")
    return dataclasses.replace(plan, transfer=dataclasses.replace(plan.transfer, **transfer))


def test_a_caller_asking_for_the_artisan_is_put_through_only_when_the_dialplan_allows_it() -> None:
    allowed = Conversation(_plan(on_request=True), NOW, "+33612345678")
    allowed.start()
    reply = asyncio.run(allowed.turn("Bonjour, je voudrais parler à l'artisan s'il vous plaît"))
    assert allowed.outcome.action is Action.TRANSFER and allowed.outcome.requested
    assert "ne quittez pas" in reply
    refused = Conversation(_plan(on_request=False), NOW, "+33612345678")
    refused.start()
    asyncio.run(refused.turn("Bonjour, je voudrais parler à l'artisan s'il vous plaît"))
    assert refused.outcome.action is None


def test_after_a_failed_transfer_the_dialplan_says_message_or_booking() -> None:
    """`transfer.on_failure` decides for an urgent call put through; a critical call is never
    booked (issue 21): whatever the dialplan says, the caller leaves a voice message."""
    from agent.dialogue.state import TransferWhen

    critical = "J'ai une fuite d'eau énorme, ça coule partout, je n'arrive pas à couper l'eau"
    urgent = "Mon chauffe-eau ne marche plus, on n'a plus d'eau chaude depuis hier"
    for on_failure in (Action.MESSAGE, Action.BOOKING):
        conv = Conversation(_plan(on_failure=on_failure), NOW, "+33612345678")
        conv.start()
        for turn in (critical, "Marie Dubois, 15 rue Victor Hugo à Nice.", "Non"):
            asyncio.run(conv.turn(turn))
        assert conv.outcome.action is Action.TRANSFER and conv.urgency is Severity.CRITICAL
        follow = conv.after_failed_transfer()
        assert follow == "" and conv.outcome.action is Action.MESSAGE, on_failure
    conv = Conversation(_plan(on_failure=Action.BOOKING, when=TransferWhen.URGENT), NOW, "+33612345678")
    conv.start()
    for turn in (urgent, "Marie Dubois, 15 rue Victor Hugo à Nice.", "oui c'est ça"):
        if conv.outcome.action is None:
            asyncio.run(conv.turn(turn))
    assert conv.outcome.action is Action.TRANSFER and conv.urgency is Severity.URGENT
    follow = conv.after_failed_transfer()
    assert "passage" in follow and conv.outcome.action is None  # slots offered, waiting for a choice
    asyncio.run(conv.turn("le premier"))
    assert conv.outcome.action is Action.BOOKING and conv.outcome.booking is not None
