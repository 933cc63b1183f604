"""The `http` route: a POST to an SMS provider's URL, body and headers from templates, the secret
from a file or an environment variable (never the YAML)."""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import urlparse

import httpx

from agent.actions.routes.base import Probe, Request, RouteError, RouteType, is_endpoint, national
from agent.yamlnode import Node


@dataclass(frozen=True)
class HttpSettings:
    url: str
    body: str = '{"to": "{to}", "text": "{text}"}'
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

    async def send(self, key: str, to: str, body: str, kind: str = "") -> None:
        if is_endpoint(to):
            raise RouteError("the http route sends to phone numbers, not to a SIP endpoint", retryable=False)
        s = self.settings
        as_json = "json" in s.content_type
        values = {"to": to, "national": national(to), "text": body, "key": key, "secret": s.secret}
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


def parse(n: Node) -> HttpSettings:
    url = n.text("url", required=True)
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise n.error("url", "the SMS provider's http:// or https:// URL", url)
    if parsed.username or parsed.password or "secret" in parsed.query.lower():
        raise n.error("url", "a URL without credentials: put the secret in secret_file and use {secret} "
                      "in headers or body", "(a URL with credentials)")
    headers = n.raw("headers", {}) or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in headers.items()):
        raise n.error("headers", "a mapping of header names to text templates", headers)
    settings = HttpSettings(url=url, body=n.text("body", HttpSettings.body), headers=headers,
                            content_type=n.text("content_type", HttpSettings.content_type),
                            secret=n.secret("API secret"),
                            timeout_s=n.number("timeout_seconds", HttpSettings.timeout_s, lo=1.0, hi=120.0))
    n.close()
    return settings


async def check(settings: HttpSettings) -> list[Probe]:
    import asyncio

    u = urlparse(settings.url)

    def connects() -> bool:
        try:
            socket.create_connection((u.hostname or "", u.port or (443 if u.scheme == "https" else 80)), 5).close()
        except OSError:
            return False
        return True

    ok = await asyncio.to_thread(connects)
    return [Probe(ok, f"SMS provider {u.hostname} " + (
        "answers" if ok else "unreachable: check the box's internet access and sms.http.url"))]


def _build(settings: HttpSettings, _request: Request) -> HttpRoute:
    return HttpRoute(settings)


TYPE = RouteType(name="http", parse=parse, build=_build, check=check, describe=lambda s: s.url.split("?")[0])
