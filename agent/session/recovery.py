"""At start-up: the calls a previous run left open (killed with -9, the box lost power) are closed.

What such a call heard was committed field by field as it went; what it had not done yet is its
end: the call's outcome, and the SMS its end queues (the lead card for the artisan, the caller's
confirmation). Both are done here, in one transaction per call, with the same idempotency keys as a
call that ends normally: a message already queued is never queued twice.

Only one controller may run on a store (systemd's unit, `make run`'s supervisor): at start-up every
open call is one that no process is carrying any more.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from agent.actions.outbox import Outbox
from agent.dialogue.schema import Dialplan
from agent.store.db import Store
from agent.store.schema import LeadStatus
from agent.telephony.call import CallOutcome

log = logging.getLogger(__name__)


def close_interrupted(store: Store, outbox: Outbox, plan_for_file: Callable[[str], Dialplan | None]) -> int:
    """Close every call left open; returns how many. Blocking (start-up, before any call)."""

    def write(conn: sqlite3.Connection) -> int:
        rows = conn.execute("SELECT c.id, c.dialplan, l.action, l.status FROM calls c "
                            "LEFT JOIN leads l ON l.call_id = c.id WHERE c.ended_at IS NULL").fetchall()
        now = time.time()
        for row in rows:
            conn.execute("UPDATE calls SET ended_at = ?, outcome = ? WHERE id = ?",
                         (now, CallOutcome.INTERRUPTED.value, row["id"]))
            if row["action"] == "transfer" and row["status"] == LeadStatus.NEW:
                # Cut while the artisan's phone rang: nobody took the emergency, the card must go.
                conn.execute("UPDATE leads SET status = ?, reason = ?, updated_at = ? WHERE call_id = ?",
                             (LeadStatus.TRANSFER_FAILED.value, CallOutcome.INTERRUPTED.value, now, row["id"]))
            plan = plan_for_file(row["dialplan"])
            if plan is not None:
                outbox.after_call(plan, row["id"])(conn)
        return len(rows)

    closed = store.run_sync(write)
    if closed:
        log.warning("%d call(s) left open by the last run (stopped mid-call) closed; their SMS queued", closed)
        outbox.poke()
    return closed
