"""What a controller that stopped mid-call (killed with -9, the box lost power) left undone.

At start-up, the calls it left open are closed.

What such a call heard was committed field by field as it went; what it had not done yet is its
end: the call's outcome, and the SMS its end queues (the lead card for the artisan, the caller's
confirmation). Both are done here, in one transaction per call, with the same idempotency keys as a
call that ends normally: a message already queued is never queued twice.

Then the dialplan takes the voice message of the caller it left on the line (named by the caller's
channel id, which the store holds): `attach_dialplan_messages` gives each such recording to its
call's lead, so the artisan finds it with the rest of the call.

Only one controller runs on a store (`Store(sole=True)` holds its lock; a second one stops at start):
at start-up every open call is one that no process is carrying any more.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from agent.actions.delivery import Outbox
from agent.dialogue.dialplan import Dialplan
from agent.store.db import Store
from agent.store.rows import attach_recording, close_call, open_calls, set_status
from agent.store.schema import LeadStatus
from agent.telephony.call import CallOutcome

log = logging.getLogger(__name__)

DIALPLAN_MESSAGE: Final = re.compile(r"message-\d+-(\d+\.\d+)\.wav")
"""`message-${EPOCH}-${UNIQUEID}.wav` (asterisk-conf/extensions.conf); ours carry a call id, no dot."""
SETTLE_S: Final = 2.0
"""A recording untouched this long is finished (Asterisk writes as the caller speaks)."""


def close_interrupted(store: Store, outbox: Outbox, plan_for_file: Callable[[str], Dialplan | None]) -> int:
    """Close every call left open; returns how many. Blocking (start-up, before any call)."""

    def write(conn: sqlite3.Connection) -> int:
        left = open_calls(conn)
        now = time.time()
        for call, lead in left:
            close_call(conn, call.id, CallOutcome.INTERRUPTED, now)
            if lead is not None and lead.transfer_pending:
                # Cut while the artisan's phone rang: nobody took the emergency, the card must go.
                set_status(conn, call.id, LeadStatus.TRANSFER_FAILED, CallOutcome.INTERRUPTED, now)
            plan = plan_for_file(call.dialplan)
            if plan is not None:
                outbox.after_call(plan, call.id)(conn)
        return len(left)

    if store.broken:
        return 0  # (said at open: nothing can be read from it until it is restored)
    closed = store.run_sync(write)
    if closed:
        log.warning("%d call(s) left open by the last run (stopped mid-call) closed; their SMS queued", closed)
        outbox.poke()
    return closed


def attach_dialplan_messages(messages_dir: Path) -> Callable[[sqlite3.Connection], int]:
    """A store write: each finished dialplan recording whose channel is a call of the store goes to that
    call's lead (if it has none); returns how many were attached. The returned write remembers the
    recordings it has settled (attached or not a call of the store's): each is looked up once, not at
    every pass over a folder that keeps weeks of messages."""
    settled: set[str] = set()

    def write(conn: sqlite3.Connection) -> int:
        now = time.time()
        attached = 0
        names = {p.name for p in messages_dir.glob("message-*.wav")} if messages_dir.is_dir() else set()
        settled.intersection_update(names)  # removed by retention: forgotten
        for name in names - settled:
            m = DIALPLAN_MESSAGE.fullmatch(name)
            if m is None:
                settled.add(name)
                continue
            wav = messages_dir / name
            try:
                if now - wav.stat().st_mtime < SETTLE_S:
                    continue  # still being recorded
            except FileNotFoundError:
                continue
            attached += attach_recording(conn, m.group(1), str(wav), now)
            settled.add(name)
        return attached
    return write
