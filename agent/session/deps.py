"""`SessionDeps`: what every call's session shares, one per process (assembled in app.py). In a
module of its own so the conversation (live.py), the voice message (message.py) and the transfer
(transfer_flow.py) all read it without importing one another in a circle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.actions.agenda import Calendars
from agent.actions.delivery import Outbox
from agent.asr.base import Transcriber
from agent.audio.turn_model import TurnDecider
from agent.dialogue.dialplan import Dialplan
from agent.llm.base import Extractor
from agent.session.phrasebook import PhraseBook
from agent.session.timing import CallTiming
from agent.store.db import Store


@dataclass(frozen=True)
class SessionDeps:
    """What every call's session shares: one per process."""

    store: Store
    book: PhraseBook
    transcriber: Transcriber | None
    """None: no French speech model installed, every call is a voice message."""
    extractor: Extractor | None
    timing: CallTiming
    messages_dir: Path
    prompts_dir: Path
    """Where per-call audio Asterisk itself plays (the artisan's whisper) is written."""
    plan_for: Callable[[str], Dialplan]
    outbox: Outbox = field(default_factory=lambda: Outbox("none"))
    """The SMS a call causes are queued with its end (and "non joint" when a transfer fails)."""
    calendars: Calendars = field(default_factory=lambda: Calendars(None))
    """The artisan's calendar (CalDAV, or none: the store's bookings) and the slots calls hold."""
    turns: TurnDecider | None = None
    """The end-of-turn model (None: the end of a turn is decided from the words alone, or the
    hangover when the VAD has no short pause)."""
