"""The systemd notify protocol (sd_notify(3)) without libsystemd: READY=1 once the controller is
connected, WATCHDOG=1 from the event loop while it runs, STOPPING=1 on the way out. systemd
(`Type=notify`, `WatchdogSec=`) restarts a controller whose loop stops pinging, and so does the
development supervisor (`make run`, agent/supervise.py), which listens on a socket of its own.
A bottom leaf: imports nothing of the project."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Final

log = logging.getLogger(__name__)

DEFAULT_WATCHDOG_S: Final = 5.0
"""The watchdog period when the supervisor does not say (systemd sets WATCHDOG_USEC)."""


class Notifier:
    """Messages to $NOTIFY_SOCKET; does nothing when the service was not started by a supervisor."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + path[1:] if path.startswith("@") else path  # "@": Linux abstract namespace
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_s = (int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
                           else None)
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, message: str) -> None:
        if not self.address:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode(), self.address)
        except OSError as exc:  # the supervisor went away: nothing to tell
            log.debug("sd_notify %s failed: %s", message, exc)

    async def watchdog(self) -> None:
        """WATCHDOG=1 at half the period, from the event loop: a blocked loop stops the pings."""
        if self.watchdog_s is None:
            return
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_s / 2)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
