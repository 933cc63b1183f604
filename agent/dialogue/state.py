"""The dialogue's typed states: severities, what a call ends in, what is being asked."""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.NORMAL: 0, Severity.URGENT: 1, Severity.CRITICAL: 2}


class Action(StrEnum):
    """What the conversation decided the call ends in."""

    TRANSFER = "transfer"
    BOOKING = "booking"
    MESSAGE = "message"
    INFO = "info"
    """No lead: a wrong number, a sales call, a question answered."""
    CANCEL = "cancel"
    """A returning caller cancelled their booking."""


class Ask(StrEnum):
    """The question the receptionist is waiting an answer to."""

    FIELD = "field"
    RECAP = "recap"
    """One confirmation of the address and the callback number together."""
    CHECK = "check"
    SLOT = "slot"
    MESSAGE = "message"
    NAME_ADDRESS = "name-address"
    """Before a trade's check question: where to go first."""
    CRITICAL = "critical"
    """The one question before a critical transfer: name and exact address."""
    DANGER = "danger"
    """Words of possible danger, no emergency recognised: is there an immediate danger?"""
    FIX = "fix"
    """The caller said the recap is wrong: which part, and its right value."""
    UPCOMING = "upcoming"
    """A returning caller with a booking: move it, cancel it, or something else?"""
    MORE = "more"
    """After answering an information question: does the caller want to leave a request?"""


class TransferWhen(StrEnum):
    CRITICAL = "critical"
    URGENT = "urgent"
    NEVER = "never"


class TransferMode(StrEnum):
    ATTENDED = "attended"
    """We ring the artisan, whisper the lead, and bridge only on a key press (1)."""
    BLIND = "blind"
    """The dialplan's `standardiste-transfer` context dials; a failure re-enters the application."""


class DialplanMode(StrEnum):
    CONVERSATION = "conversation"
    MESSAGE = "message"
    """Greeting, then a voice message: no speech recognition on this business's calls."""


class Hazard(StrEnum):
    """The danger a critical call is about (the learned layer's second answer, severity.py): each has
    one targeted yes/no question and its safety advice (phrases.py)."""

    GAS = "gas"
    """Gas or fuel-oil smell or leak."""
    CO = "co"
    """Carbon monoxide: an alarm, headaches and nausea near a boiler or stove."""
    FIRE = "fire"
    ELECTRIC_WATER = "electric_water"
    """Water reaching sockets, wiring or a light fitting."""
    ELECTRIC = "electric"
    """Someone shocked, bare live wires, a fallen power line."""
    WATER = "water"
    """Water pouring that cannot be shut off."""
    SEWAGE = "sewage"
    """Sewage or biological waste in living space."""
    STRUCTURE = "structure"
    """Something falling or collapsing: a ceiling, a roof, a chimney, a tree, broken glass."""
    PERSON = "person"
    """Someone hurt, locked in, or vulnerable without heating, power or care."""
    SECURITY = "security"
    """A home or shop that cannot be closed (break-in, door forced)."""


class AboutBooking(StrEnum):
    """What a returning caller says of their upcoming booking."""

    CANCEL = "cancel"
    MOVE = "move"
    KEEP = "keep"
