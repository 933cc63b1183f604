"""A thin asyncio ARI client: REST over httpx, events over one websocket.

Why our own: ari-py (the package named in the design) does not import on Python 3, and the
maintained forks either hang or busy-loop when the websocket closes (see README). This client
reconnects with capped backoff and tells its user after each (re)connection, because Asterisk
does not replay events: whoever listens must re-read the live channels.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from agent.telephony.events import Connected, Event, parse_event

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S: Final = 5.0
"""Longest a single ARI REST request may take before it counts as failed, seconds."""
CONNECT_TIMEOUT_S: Final = 5.0
"""Websocket opening handshake limit, seconds."""
RECONNECT_INITIAL_S: Final = 0.25
RECONNECT_MAX_S: Final = 2.0
"""Backoff between websocket attempts doubles from RECONNECT_INITIAL_S up to this cap, seconds."""
PING_INTERVAL_S: Final = 10.0
"""Websocket keepalive: a dead Asterisk is noticed within about twice this, seconds."""

REQUIRED_OPERATIONS: Final[tuple[tuple[str, str], ...]] = (
    ("GET", "/asterisk/info"),
    ("GET", "/applications/{applicationName}"),
    ("GET", "/channels"),
    ("GET", "/channels/{channelId}"),
    ("POST", "/channels/{channelId}/answer"),
    ("DELETE", "/channels/{channelId}"),
    ("POST", "/channels/{channelId}/play/{playbackId}"),
    ("POST", "/channels/{channelId}/continue"),
    ("POST", "/channels/create"),
    ("POST", "/channels/{channelId}/dial"),
    ("GET", "/channels/{channelId}/variable"),
    ("POST", "/channels/{channelId}/variable"),
    ("POST", "/channels/externalMedia"),
    ("DELETE", "/playbacks/{playbackId}"),
    ("GET", "/bridges"),
    ("POST", "/bridges/{bridgeId}"),
    ("POST", "/bridges/{bridgeId}/addChannel"),
    ("DELETE", "/bridges/{bridgeId}"),
)
"""Every ARI operation the controller calls; checked against the live server at start-up."""


class AriError(Exception):
    """An ARI operation failed. `retryable` says whether trying again later can help."""

    stage = "ari"

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class AriUnavailable(AriError):
    """Asterisk did not answer (down, restarting, wrong address)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class AriApiMismatch(AriError):
    """The live Asterisk lacks operations the controller needs (module missing or too old)."""


class AppReplaced(AriError):
    """Another client took over our application's websocket."""


class AriClient:
    def __init__(self, base_url: str, username: str, password: str, app: str, *,
                 request_timeout: float = REQUEST_TIMEOUT_S,
                 reconnect_initial: float = RECONNECT_INITIAL_S,
                 reconnect_max: float = RECONNECT_MAX_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        self._auth_header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/ari",
            headers={"Authorization": self._auth_header},
            timeout=request_timeout,
        )
        self._reconnect_initial = reconnect_initial
        self._reconnect_max = reconnect_max
        self.connections = 0
        """How many times the events websocket has connected (1 after the first)."""

    async def close(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      body: Any = None, missing_ok: bool = False) -> Any:
        """One REST call; returns the decoded JSON (or None). 404 is None when missing_ok."""
        try:
            resp = await self._http.request(method, path, params=params, json=body)
        except httpx.TransportError as exc:
            raise AriUnavailable(f"{method} {path}: Asterisk unreachable ({type(exc).__name__})") from exc
        if resp.status_code == 404 and missing_ok:
            return None
        if resp.status_code >= 400:
            detail = _error_text(resp)
            raise AriError(f"{method} {path}: HTTP {resp.status_code} {detail}",
                           status=resp.status_code, retryable=resp.status_code >= 500)
        if not resp.content:
            return None
        return resp.json()

    async def check_operations(self, required: Iterable[tuple[str, str]] = REQUIRED_OPERATIONS) -> None:
        """Compare what we call with the live server's own swagger; raise naming what is missing."""
        offered = await self.operations()
        missing = sorted(f"{m} {p}" for m, p in required if (m, p) not in offered)
        if missing:
            raise AriApiMismatch("the live Asterisk does not offer: " + ", ".join(missing)
                                 + " (a module missing, or Asterisk too old)")

    async def operations(self) -> set[tuple[str, str]]:
        listing = await self.request("GET", "/api-docs/resources.json")
        offered: set[tuple[str, str]] = set()
        for api in listing.get("apis", []):
            # "/api-docs/channels.{format}" -> "/api-docs/channels.json"
            doc_path = str(api["path"]).replace("{format}", "json")
            doc = await self.request("GET", doc_path)
            for entry in doc.get("apis", []):
                for op in entry.get("operations", []):
                    offered.add((str(op["httpMethod"]).upper(), str(entry["path"])))
        return offered

    async def events(self, stop: asyncio.Event) -> AsyncIterator[Event]:
        """Yield events forever, reconnecting with capped backoff; `Connected` after each connect."""
        scheme = "wss" if self.base_url.startswith("https") else "ws"
        url = f"{scheme}://{self.base_url.split('://', 1)[1]}/ari/events?app={self.app}&subscribeAll=false"
        delay = self._reconnect_initial
        while not stop.is_set():
            try:
                async with ws_connect(url, additional_headers={"Authorization": self._auth_header},
                                      open_timeout=CONNECT_TIMEOUT_S, ping_interval=PING_INTERVAL_S,
                                      ping_timeout=PING_INTERVAL_S, max_size=2**22) as ws:
                    self.connections += 1
                    log.info("ARI events connected (connection %d)", self.connections)
                    delay = self._reconnect_initial
                    yield Connected("Connected", {})
                    async for raw in ws:
                        event = _decode(raw)
                        if event is None:
                            continue
                        if event.type == "ApplicationReplaced":
                            raise AppReplaced("another client took over the ARI application "
                                              f"{self.app!r}: is a second controller running?")
                        yield event
                log.warning("ARI events websocket closed by Asterisk; reconnecting")
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                if isinstance(exc, InvalidStatus) and exc.response.status_code in (401, 403):
                    raise AriError("ARI refused our credentials (HTTP "
                                   f"{exc.response.status_code}): check the ARI user and password") from exc
                log.warning("ARI events unavailable (%s); retrying in %.2f s", type(exc).__name__, delay)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, self._reconnect_max)


def _decode(raw: str | bytes) -> Event | None:
    try:
        data = json.loads(raw)
    except ValueError:
        log.warning("ARI sent a frame that is not JSON; dropped")
        return None
    if not isinstance(data, dict):
        return None
    return parse_event(data)


def _error_text(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.reason_phrase
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    return resp.reason_phrase
