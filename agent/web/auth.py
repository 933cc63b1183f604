"""The dashboard's login: one password set at install (`standardiste set-password`), kept as a
salted scrypt hash (hashlib), checked in constant time; failed logins rate-limited per client.
There is no default password: without the file the web UI does not start."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections import defaultdict, deque
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


class LoginLimiter:
    def __init__(self, attempts: int = LOGIN_ATTEMPTS, window_s: float = LOGIN_WINDOW_S) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def blocked(self, client: str) -> bool:
        q = self._failures[client]
        now = time.monotonic()
        while q and now - q[0] > self.window_s:
            q.popleft()
        return len(q) >= self.attempts

    def failed(self, client: str) -> None:
        self._failures[client].append(time.monotonic())
