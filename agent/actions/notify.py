"""Telling the artisan about a lead: the hook the SMS routes plug into (issue 10).

`notify` is called when a lead needs the artisan's attention now (a transfer that failed). Each
registered notifier gets the call's id and the reason; until an SMS route is configured none is,
and the store says so, so the dashboard can show that nobody was told.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.store.db import Store

log = logging.getLogger(__name__)

Notifier = Callable[[Store, int, str], None]
NOTIFIERS: list[Notifier] = []
"""Registered at start-up by the assembly (app.py) from the service config."""


def notify(store: Store, call_id: int, reason: str) -> None:
    if not NOTIFIERS:
        store.add_action(call_id, "notify", "", "not sent", "no notification route configured")
        return
    for notifier in NOTIFIERS:
        notifier(store, call_id, reason)
