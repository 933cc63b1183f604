"""The dashboard's login: one password set at install (`standardiste set-password`), kept as a
salted scrypt hash (hashlib), checked in constant time; failed logins rate-limited per client.
There is no default password: without the file the web UI does not start."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

from agent.files import write_private
from agent.passwords import weakness

SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
MIN_PASSWORD_LEN: Final = 10
LOGIN_ATTEMPTS: Final = 5
LOGIN_WINDOW_S: Final = 60.0
"""At most LOGIN_ATTEMPTS failed logins per client address within this window, seconds."""


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.strip().split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def set_password(path: Path, password: str) -> None:
    why = weakness(password, MIN_PASSWORD_LEN)
    if why is not None:
        raise ValueError(f"this password is too weak ({why}); choose at least {MIN_PASSWORD_LEN} characters "
                         "that are not a default or a common password")
    write_private(path, hash_password(password) + "\n")


def session_secret(path: Path) -> str:
    """The key that signs session cookies, made once (0600) and kept across restarts."""
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32) + "\n")
    return path.read_text(encoding="utf-8").strip()


LOGIN_GLOBAL_FAILURES: Final = 60
"""Failed logins from all clients together within LOGIN_WINDOW_S beyond which every login waits for
the window to pass: many addresses cannot share out a brute force."""
LOGIN_CLIENTS: Final = 4096
"""Clients the limiter remembers at most (the least recently seen are forgotten first)."""
CHECKS_WAITING: Final = 4
"""Password checks queued for the hashing thread at most; more at once are refused (503)."""


class LoginLimiter:
    """Failed logins per client address (the TCP peer, or the address a configured trusted proxy
    gives), and for all clients together; bounded in memory, forgetting what is older than the window."""

    def __init__(self, attempts: int = LOGIN_ATTEMPTS, window_s: float = LOGIN_WINDOW_S,
                 global_failures: int = LOGIN_GLOBAL_FAILURES, clients: int = LOGIN_CLIENTS) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self.global_failures = global_failures
        self.clients = clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque()

    def _prune(self, q: deque[float], now: float) -> None:
        while q and now - q[0] > self.window_s:
            q.popleft()

    def blocked(self, client: str) -> bool:
        now = time.monotonic()
        self._prune(self._all, now)
        if len(self._all) >= self.global_failures:
            return True
        q = self._failures.get(client)
        if q is None:
            return False
        self._prune(q, now)
        if not q:
            del self._failures[client]
            return False
        return len(q) >= self.attempts

    def failed(self, client: str) -> None:
        now = time.monotonic()
        q = self._failures.pop(client, None) or deque()
        q.append(now)
        self._failures[client] = q  # most recently seen last
        self._all.append(now)
        while len(self._failures) > self.clients:
            self._failures.popitem(last=False)

    def __len__(self) -> int:
        return len(self._failures)


class PasswordCheck:
    """The scrypt check (~40 ms of CPU) in a thread of its own, never on an event loop; at most
    CHECKS_WAITING at once, the rest refused at once (None) instead of queued."""

    def __init__(self, stored: str, waiting: int = CHECKS_WAITING) -> None:
        self.stored = stored
        self.waiting = waiting
        self._pending = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="password")

    async def verify(self, password: str) -> bool | None:
        if self._pending >= self.waiting:
            return None
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, verify_password, password,
                                                                    self.stored)
        finally:
            self._pending -= 1
