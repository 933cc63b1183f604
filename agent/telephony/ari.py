"""A thin asyncio ARI client: REST over httpx, events over one websocket.

When Asterisk's HTTP server takes no new connection (its `sessionlimit` filled by others: any local
process can hold 399 half-open connections), REST requests go over the events websocket instead
(ARI "REST over WebSocket", Asterisk 20.14, 21.9, 22.4 and later), which is already open: a caller
is still answered. HTTP stays the first choice: Asterisk serves one websocket's requests one by one.

Why our own: ari-py (the package named in the design) does not import on Python 3, and the
maintained forks either hang or busy-loop when the websocket closes (see README). This client
reconnects with capped backoff and tells its user after each (re)connection, because Asterisk
does not replay events: whoever listens must re-read the live channels.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from agent.telephony.events import Connected, Event, parse_event

log = logging.getLogger(__name__)

ARI_KEEPALIVE: Final = 4
"""Idle connections to Asterisk kept open after a burst of requests (httpx keeps 20 by default): a
burst of calls left up to 20 sockets open until the next request, which the soak test read as a leak
(CI69: 17 -> 23 fds). Loopback connections cost a fraction of a millisecond to open again."""
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
            limits=httpx.Limits(max_keepalive_connections=ARI_KEEPALIVE),
        )
        self._request_timeout = request_timeout
        self._reconnect_initial = reconnect_initial
        self._reconnect_max = reconnect_max
        self.connections = 0
        """How many times the events websocket has connected (1 after the first)."""
        self._ws: ClientConnection | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self.over_websocket = 0
        """REST requests sent over the events websocket because HTTP took no connection."""
        self._http_refused = False

    async def close(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      body: Any = None, missing_ok: bool = False) -> Any:
        """One REST call; returns the decoded JSON (or None). 404 is None when missing_ok."""
        try:
            resp = await self._http.request(method, path, params=params, json=body)
        except NOT_SENT as exc:
            # No HTTP connection to be had (refused, or closed before any answer: Asterisk's session
            # limit); the request was not carried out, so it may go over the websocket instead.
            if self._ws is None:
                raise AriUnavailable(f"{method} {path}: Asterisk unreachable ({type(exc).__name__})") from exc
            if not self._http_refused:
                self._http_refused = True
                log.warning("ARI over HTTP refused (%s): requests go over the events websocket", type(exc).__name__)
            return await self._over_websocket(method, path, params, body, missing_ok)
        except httpx.TransportError as exc:
            raise AriUnavailable(f"{method} {path}: Asterisk unreachable ({type(exc).__name__})") from exc
        if self._http_refused:
            self._http_refused = False
            log.info("ARI over HTTP answers again")
        return _result(method, path, resp.status_code, resp.reason_phrase,
                       resp.content.decode("utf-8", "replace"), missing_ok)

    async def _over_websocket(self, method: str, path: str, params: dict[str, Any] | None, body: Any,
                              missing_ok: bool) -> Any:
        ws = self._ws
        if ws is None:
            raise AriUnavailable(f"{method} {path}: Asterisk unreachable (no HTTP, no websocket)")
        request_id = f"sd-{next(self._ids)}"
        uri = path.lstrip("/") + (("?" + urlencode({k: _plain(v) for k, v in params.items()})) if params else "")
        frame: dict[str, Any] = {"type": "RESTRequest", "request_id": request_id, "method": method, "uri": uri}
        if body is not None:
            frame |= {"content_type": "application/json", "message_body": json.dumps(body)}
        answer = self._pending[request_id] = asyncio.get_running_loop().create_future()
        self.over_websocket += 1
        try:
            await ws.send(json.dumps(frame))
            reply = await asyncio.wait_for(answer, self._request_timeout)
        except (ConnectionClosed, TimeoutError) as exc:
            raise AriUnavailable(f"{method} {path}: Asterisk unreachable ({type(exc).__name__}, websocket)") from exc
        finally:
            self._pending.pop(request_id, None)
        return _result(method, path, int(reply.get("status_code") or 0), str(reply.get("reason_phrase", "")),
                       str(reply.get("message_body") or ""), missing_ok)

    def _answered(self, data: dict[str, Any]) -> None:
        """A RESTResponse frame: the answer of a request sent over the websocket."""
        answer = self._pending.get(str(data.get("request_id", "")))
        if answer is not None and not answer.done():
            answer.set_result(data)

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
                    self._ws = ws
                    try:
                        yield Connected("Connected", {})
                        async for raw in ws:
                            data = _decode(raw)
                            if data is None:
                                continue
                            if data.get("type") == "RESTResponse":
                                self._answered(data)
                                continue
                            event = parse_event(data)
                            if event.type == "ApplicationReplaced":
                                raise AppReplaced("another client took over the ARI application "
                                                  f"{self.app!r}: is a second controller running?")
                            yield event
                    finally:
                        self._ws = None
                        for answer in self._pending.values():
                            if not answer.done():
                                answer.set_exception(ConnectionClosed(None, None))
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


NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.RemoteProtocolError)
"""HTTP failures after which the request was not carried out: no connection, or one closed before
any answer (Asterisk's HTTP server closes a connection over its session limit at once, and Asterisk
answers every request it has read)."""


def _result(method: str, path: str, status: int, reason: str, text: str, missing_ok: bool) -> Any:
    """An answer, over HTTP or the websocket: the decoded JSON, None, or the AriError it means."""
    if status == 404 and missing_ok:
        return None
    if status >= 400 or status == 0:
        raise AriError(f"{method} {path}: HTTP {status} {_error_text(text, reason)}",
                       status=status, retryable=status >= 500)
    return json.loads(text) if text.strip() else None


def _plain(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _decode(raw: str | bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        log.warning("ARI sent a frame that is not JSON; dropped")
        return None
    return data if isinstance(data, dict) else None


def _error_text(text: str, reason: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return reason
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    return reason
