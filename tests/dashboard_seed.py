"""A store as an artisan's would look after a few days (issue 23): a critical call not reached, a
voice message, a caller who hung up, a booking tomorrow, a transfer put through, a question
answered, a failing SMS. Written through the service's own Store (real SQLite). Shared by the
dashboard tests and `make screenshots`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from agent.store.db import Store
from agent.store.outbox import enqueue
from agent.store.schema import CallStage, LeadStatus

TZ = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class Seeded:
    unreached: int
    """The critical call whose transfer failed."""
    message: int
    hung_up: int
    booked: int
    transferred: int
    info: int
    in_progress: int


def seed(store: Store, messages_dir: Path, now: float | None = None) -> Seeded:
    now = time.time() if now is None else now
    messages_dir.mkdir(parents=True, exist_ok=True)
    tomorrow = datetime.fromtimestamp(now, TZ).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=1)

    async def fill() -> Seeded:
        async def call(caller: str, ago_s: float, ended: bool = True, **lead: object) -> int:
            call_id = await store.open_call(channel_id=f"seed.{ago_s}", did="0493000001", caller_id=caller,
                                            dialplan="plombier.yaml", trade="plombier", business="Plomberie Martin")
            at = now - ago_s
            store.submit(lambda c: c.execute("UPDATE calls SET started_at = ? WHERE id = ?", (at, call_id)))
            store.set_lead(call_id, **lead)
            store.submit(lambda c: c.execute("UPDATE leads SET created_at = ? WHERE call_id = ?", (at, call_id)))
            store.add_turn(call_id, "agent", "Plomberie Martin, bonjour. Je suis l'assistant automatique.")
            if lead.get("problem"):
                store.add_turn(call_id, "caller", str(lead["problem"]))
            if ended:
                store.end_call(call_id, "completed", [{"event": "stasis_start", "ms": 0.0},
                                                      {"event": "answered", "ms": 90.0}]).result()
            return call_id

        info = await call("+33491000000", 26 * 3600, name="Paul Girard", problem="Horaires d'ouverture",
                          urgency="normal", action="info", status=LeadStatus.INFO)
        transferred = await call("+33698765432", 5 * 3600, name="Luc Bernard", phone="+33698765432",
                                 problem="Chaudière en panne, plus de chauffage", urgency="critical",
                                 action="transfer", status=LeadStatus.TRANSFERRED)
        booked = await call("+33612345678", 3 * 3600, name="Jean Martin", phone="+33612345678",
                            address="12 avenue Jean Médecin, Nice", problem="Évier bouché depuis ce matin",
                            urgency="normal", action="booking", status=LeadStatus.BOOKED,
                            booking_start=tomorrow.timestamp(), booking_end=tomorrow.timestamp() + 3600)
        hung_up = await call("+33645123456", 2 * 3600, name="Sophie Leroy", phone="+33645123456",
                             problem="Chasse d'eau qui fuit", urgency="normal", status=LeadStatus.NEW)
        recording = messages_dir / "seed-message.wav"
        recording.write_bytes(b"RIFF")
        message = await call("+33493123456", 40 * 60, urgency="urgent", action="message",
                             status=LeadStatus.MESSAGE, recording=str(recording))
        unreached = await call("+33611223344", 12 * 60, name="Marie Dubois", phone="+33611223344",
                               address="3 rue de la Paix, Nice", problem="Fuite d'eau au plafond, ça coule fort",
                               urgency="critical", action="transfer", status=LeadStatus.TRANSFER_FAILED,
                               reason="no answer")
        store.add_action(unreached, "transfer", "PJSIP/artisan", "failed", "no answer")
        in_progress = await call("+33600000001", 30, ended=False, urgency="normal")
        store.set_stage(in_progress, CallStage.MESSAGE)
        store.submit(lambda c: enqueue(c, key=f"{unreached}:artisan", call_id=unreached, kind="artisan_unreached",
                                       route="sip", recipient="PJSIP/artisan", body="x")).result()
        store.submit(lambda c: c.execute("UPDATE outbox SET attempts = 3, last_error = 'ARI sendMessage: 404'")
                     ).result()
        return Seeded(unreached, message, hung_up, booked, transferred, info, in_progress)

    return asyncio.run(fill())
