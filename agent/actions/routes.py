"""How an SMS leaves the box: one small interface, three routes, chosen in the service config.

- `sip`: ARI `PUT /endpoints/sendMessage`, a SIP MESSAGE through Asterisk to a PJSIP endpoint (a GSM
  gateway, or the artisan's SIP phone);
- `http`: a POST to an SMS provider's URL, body and headers from templates, the secret from a file
  or an environment variable (never the YAML);
- `spool`: a file written into a gammu-smsd or smstools outgoing spool directory (atomic rename).

A route raises `RouteError`; `retryable` says whether trying again later can help.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import httpx

from agent.files import write_private

SMS_ROUTES: Final = ("none", "sip", "http", "spool")
SPOOL_FORMATS: Final = ("gammu", "smstools")


class RouteError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Route(Protocol):
    name: str

    async def send(self, key: str, to: str, body: str) -> None:
        """Deliver `body` to `to` (E.164 number or PJSIP/endpoint) or raise RouteError. `key` is the
        message's idempotency key: the same key is never a second message where the route allows."""

    async def close(self) -> None:
        """Release what the route holds (connections)."""


def is_endpoint(to: str) -> bool:
    return to.startswith("PJSIP/")


# --- sip ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SipSettings:
    to: str = "pjsip:{number}"
    """Where a number goes: "pjsip:gsm-gateway/sip:{number}@192.168.1.50" for a GSM gateway."""
    sender: str = "sip:standardiste@localhost"


Request = Callable[..., Awaitable[Any]]
"""AriClient.request: (method, path, *, params=..., body=...) -> JSON."""


class SipRoute:
    name = "sip"

    def __init__(self, settings: SipSettings, request: Request) -> None:
        self.settings = settings
        self._request = request

    async def send(self, key: str, to: str, body: str) -> None:
        from agent.telephony.ari import AriError

        dest = f"pjsip:{to.removeprefix('PJSIP/')}" if is_endpoint(to) else self.settings.to.format(
            number=to, national=_national(to))
        try:
            await self._request("PUT", "/endpoints/sendMessage",
                                params={"to": dest, "from": self.settings.sender, "body": body})
        except AriError as exc:
            # 404: the endpoint is unknown or has no contact (phone not registered): may come back.
            raise RouteError(f"ARI sendMessage: {exc.status or 'unreachable'}",
                             retryable=exc.retryable or exc.status in (404, 503)) from None

    async def close(self) -> None:
        pass  # the AriClient is the service's own


# --- http ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HttpSettings:
    url: str
    body: str
    """A template: {to}, {national}, {text}, {key}, {secret} (JSON-escaped when content_type is JSON)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Header templates, e.g. {"Authorization": "Bearer {secret}"}."""
    content_type: str = "application/json"
    secret: str = ""
    timeout_s: float = 10.0


class HttpRoute:
    name = "http"

    def __init__(self, settings: HttpSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._client = client or httpx.AsyncClient(timeout=settings.timeout_s)

    async def send(self, key: str, to: str, body: str) -> None:
        if is_endpoint(to):
            raise RouteError("the http route sends to phone numbers, not to a SIP endpoint", retryable=False)
        s = self.settings
        as_json = "json" in s.content_type
        values = {"to": to, "national": _national(to), "text": body, "key": key, "secret": s.secret}
        escaped = {k: json.dumps(v)[1:-1] for k, v in values.items()} if as_json else values
        payload = _fill(s.body, escaped)
        headers = {"Content-Type": s.content_type, "Idempotency-Key": key,
                   **{k: _fill(v, values) for k, v in s.headers.items()}}
        try:
            resp = await self._client.post(s.url, content=payload.encode("utf-8"), headers=headers)
        except httpx.HTTPError as exc:
            raise RouteError(f"HTTP: {type(exc).__name__}", retryable=True) from None
        if resp.status_code >= 300:
            # 4xx other than 408/429 is a request the provider refuses: trying again will not help.
            retry = resp.status_code >= 500 or resp.status_code in (408, 429)
            raise RouteError(f"HTTP {resp.status_code}", retryable=retry)

    async def close(self) -> None:
        await self._client.aclose()


def _fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), m.group(0)), template)


# --- spool --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpoolSettings:
    directory: Path
    format: str = "gammu"


class SpoolRoute:
    """gammu-smsd's files backend (`OUTA_<number>_<key>.txt`, the text alone, UTF-8) or smstools
    (`To:` header, blank line, text).
    Written under a dot name, fsynced, then renamed: the daemon never sees half a file. The key is in
    the name: a message tried again after a crash replaces its own file instead of adding one."""

    name = "spool"

    def __init__(self, settings: SpoolSettings) -> None:
        self.settings = settings

    async def send(self, key: str, to: str, body: str) -> None:
        if is_endpoint(to):
            raise RouteError("the spool route sends to phone numbers, not to a SIP endpoint", retryable=False)
        safe_key = re.sub(r"[^A-Za-z0-9]", "-", key)
        number = to.lstrip("+")
        d = self.settings.directory
        if self.settings.format == "gammu":
            name, data = f"OUTA_+{number}_{safe_key}.txt", body
        else:
            name, data = f"standardiste-{safe_key}", f"To: {number}\nAlphabet: UTF-8\n\n{body}\n"
        try:  # 0640: the SMS daemon reads it through its group
            write_private(d / name, data, 0o640, durable=True, make_dir=False)
        except OSError as exc:
            raise RouteError(f"spool {d}: {exc.strerror}", retryable=True) from None

    async def close(self) -> None:
        pass


def _national(number: str) -> str:
    """+33612345678 -> 0612345678 (what some French gateways want)."""
    return "0" + number[3:] if number.startswith("+33") else number
