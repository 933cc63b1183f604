"""The store's schema, as numbered migrations (PRAGMA user_version holds the one applied)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class LeadStatus(StrEnum):
    """Where the lead stands after the call (the artisan's follow-up comes on top of this)."""

    NEW = "new"
    """The call is in progress, or ended before anything was decided."""
    TRANSFERRED = "transferred"
    TRANSFER_FAILED = "transfer_failed"
    BOOKED = "booked"
    MESSAGE = "message"
    INFO = "info"
    """No lead: wrong number, sales call, a question answered."""
    CANCELLED = "cancelled"
    """Booked, then cancelled by the caller calling back."""


TRANSFER_ACTION: Final = "transfer"
"""The lead's `action` column when the dialogue decided to put the caller through."""


def transfer_pending(action: object, status: object) -> bool:
    """A lead whose call was being put through to the artisan and whose transfer has no result yet
    (its end, or the blind transfer's return, decides the SMS; a call cut then was not taken)."""
    return action == TRANSFER_ACTION and status == LeadStatus.NEW


class Urgency(StrEnum):
    """A lead's urgency as the store holds it (the values of the dialogue's Severity)."""

    NORMAL = "normal"
    URGENT = "urgent"
    CRITICAL = "critical"


class FollowUp(StrEnum):
    """Where the artisan stands with a lead (nouveau -> rappelé -> devis -> gagné/perdu)."""

    NEW = "new"
    CALLED_BACK = "called_back"
    QUOTED = "quoted"
    WON = "won"
    LOST = "lost"


FOLLOWUP_LABELS: Final = {FollowUp.NEW: "à rappeler", FollowUp.CALLED_BACK: "rappelé",
                          FollowUp.QUOTED: "devis envoyé", FollowUp.WON: "gagné", FollowUp.LOST: "perdu"}
DONE_FOLLOWUPS: Final = (FollowUp.CALLED_BACK, FollowUp.QUOTED, FollowUp.WON, FollowUp.LOST)
"""The artisan has dealt with the lead: it leaves the to-do list."""


class CallStage(StrEnum):
    """Where a call in progress stands, kept current by its session (the dashboard's En direct)."""

    GREETING = "greeting"
    LISTENING = "listening"
    TRANSFER = "transfer"
    MESSAGE = "message"


STAGE_LABELS: Final = {CallStage.GREETING: "accueil", CallStage.LISTENING: "conversation",
                       CallStage.TRANSFER: "transfert vers l'artisan", CallStage.MESSAGE: "message vocal"}


class Who(StrEnum):
    CALLER = "caller"
    AGENT = "agent"


LEAD_COLUMNS: Final = ("name", "address", "phone", "problem", "trade", "urgency", "action", "status", "reason",
                       "recording", "message", "booking_start", "booking_end", "sms_refused")


class SmsState(StrEnum):
    """Where an SMS in the outbox stands."""

    PENDING = "pending"
    """Waiting for its next try (`next_at`)."""
    SENDING = "sending"
    """Handed to the route; a crash here leaves it to be tried again (with the same key)."""
    SENT = "sent"
    FAILED = "failed"
    """Given up after the route's retry limit, or refused for good by the route."""

MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        """CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            channel_id TEXT NOT NULL,
            started_at REAL NOT NULL,          -- unix time, s
            ended_at REAL,
            did TEXT NOT NULL DEFAULT '',
            caller_id TEXT NOT NULL DEFAULT '',
            dialplan TEXT NOT NULL DEFAULT '',  -- the dialplan file that answered
            business TEXT NOT NULL DEFAULT '',
            outcome TEXT
        )""",
        "CREATE INDEX calls_started ON calls (started_at)",
        "CREATE INDEX calls_channel ON calls (channel_id)",
        """CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
            at REAL NOT NULL,
            who TEXT NOT NULL CHECK (who IN ('caller', 'agent')),
            text TEXT NOT NULL,
            interrupted INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX turns_call ON turns (call_id)",
        """CREATE TABLE leads (
            id INTEGER PRIMARY KEY,
            call_id INTEGER NOT NULL UNIQUE REFERENCES calls (id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            caller_id TEXT NOT NULL DEFAULT '',
            name TEXT, address TEXT, phone TEXT, problem TEXT,
            trade TEXT NOT NULL DEFAULT '',
            urgency TEXT NOT NULL DEFAULT 'normal',
            action TEXT,
            status TEXT NOT NULL DEFAULT 'new',
            reason TEXT,
            recording TEXT,                    -- path of the caller's voice message, if any
            message TEXT,
            booking_start REAL, booking_end REAL
        )""",
        "CREATE INDEX leads_created ON leads (created_at)",
        """CREATE TABLE actions (
            id INTEGER PRIMARY KEY,
            call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
            at REAL NOT NULL,
            kind TEXT NOT NULL,                -- transfer, booking, recording, ...
            target TEXT NOT NULL DEFAULT '',
            result TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX actions_call ON actions (call_id)",
        """CREATE TABLE traces (
            call_id INTEGER PRIMARY KEY REFERENCES calls (id) ON DELETE CASCADE,
            events TEXT NOT NULL               -- JSON list of {event, ms}
        )""",
        """CREATE TABLE bookings (
            id INTEGER PRIMARY KEY,
            call_id INTEGER REFERENCES calls (id) ON DELETE SET NULL,
            start REAL NOT NULL, end REAL NOT NULL,
            created_at REAL NOT NULL
        )""",
        "CREATE INDEX bookings_start ON bookings (start)",
    ),
    2: (
        # SMS waiting to be sent, written in the same transaction as the event that causes them.
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,          -- idempotency: one message per lead and kind
            call_id INTEGER REFERENCES calls (id) ON DELETE SET NULL,
            kind TEXT NOT NULL,                -- artisan, artisan_unreached, caller, digest, test
            route TEXT NOT NULL,               -- sip, http, spool
            recipient TEXT NOT NULL,           -- E.164 number, or a SIP endpoint
            body TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at REAL NOT NULL,             -- unix time of the next try
            created_at REAL NOT NULL,
            sent_at REAL,
            last_error TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX outbox_due ON outbox (state, next_at)",
        "ALTER TABLE leads ADD COLUMN sms_refused INTEGER NOT NULL DEFAULT 0",
    ),
    3: (
        # The artisan's follow-up of a lead, set in the dashboard (issue 11).
        "ALTER TABLE leads ADD COLUMN followup TEXT NOT NULL DEFAULT 'new'",
    ),
    4: (
        # `standardiste forget` (GDPR art. 17): when a person's data was erased and how much, never whose.
        """CREATE TABLE erasures (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            calls INTEGER NOT NULL, leads INTEGER NOT NULL, recordings INTEGER NOT NULL,
            messages INTEGER NOT NULL
        )""",
    ),
    5: (
        # The dashboard as a to-do list (issue 23): what a won lead brought in, where a live call stands.
        "ALTER TABLE leads ADD COLUMN won_eur INTEGER",
        "ALTER TABLE calls ADD COLUMN stage TEXT",
    ),
}
SCHEMA_VERSION: Final = max(MIGRATIONS)
