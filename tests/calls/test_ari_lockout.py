"""Issue 24: any local process could lock the controller out of ARI by filling Asterisk's HTTP
session limit (399 half-open connections beside our websocket): a new call then rang in Stasis for
69 s, neither answered nor sent to the voice message. The controller now sends its requests over
the events websocket, already open, when HTTP takes no connection."""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import socket
import threading
import time
from pathlib import Path

import httpx

from agent.devtools.asterisk import ARI_USER, DevAsterisk
from tests.live import CALLER_NUMBER, heard_speech_between, leftovers, scripted

HALF_OPEN = 399
"""Asterisk's `sessionlimit` (asterisk-conf/http.conf: 400) minus our events websocket."""
OPEN_BATCH = 8
"""Connections opened before waiting for Asterisk to accept them: under its listen backlog (10)."""


class HalfOpen:
    """`n` connections to Asterisk's HTTP port that never send a request; each one Asterisk closes
    (its inactivity timeout, or its session limit when others held a slot) is opened again at once,
    as an attacker would. Watched with `selectors` (epoll: no 1024-descriptor ceiling, which a
    worker that ran many calls can pass) and a connection that cannot be reopened is tried again on
    the next round, never left closed in the watched set (CI: `select` on it killed the thread and
    the slots it freed stayed free)."""

    def __init__(self, port: int, n: int) -> None:
        self.port = port
        started = time.monotonic()
        self.socks: list[socket.socket] = []
        while len(self.socks) < n:
            self.socks += [self._open() for _ in range(min(OPEN_BATCH, n - len(self.socks)))]
            self._wait_accepted()
        self.open_s = time.monotonic() - started
        self.reopened = 0
        self.failed_reopens = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)
        self._thread.start()

    def _open(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        s.setblocking(False)
        return s

    def _wait_accepted(self, limit_s: float = 2.0) -> None:
        """Until Asterisk has taken every connection off its listen queue (10 deep: asterisk's
        tcptls `listen(fd, 10)`). Opened faster than it accepts, the kernel drops the 11th SYN and
        the client resends it a second later: 399 connections then took 16-30 s on a loaded
        machine, and Asterisk's inactivity timeout (10 s) closed the first before the last was open."""
        deadline = time.monotonic() + limit_s
        while _accept_queue(self.port) and time.monotonic() < deadline:
            time.sleep(0.002)

    def _hold(self) -> None:
        try:
            with selectors.DefaultSelector() as sel:
                for s in self.socks:
                    sel.register(s, selectors.EVENT_READ)
                missing = 0
                while not self._stop.wait(0.05):
                    for key, _ in sel.select(0):
                        s = key.fileobj
                        assert isinstance(s, socket.socket)
                        try:
                            closed = s.recv(1) == b""
                        except BlockingIOError:
                            closed = False
                        except OSError:
                            closed = True
                        if closed:
                            sel.unregister(s)
                            self.socks.remove(s)
                            s.close()
                            missing += 1
                    while missing and not self._stop.is_set():
                        try:
                            s = self._open()
                        except OSError:
                            self.failed_reopens += 1
                            break
                        self.socks.append(s)
                        sel.register(s, selectors.EVENT_READ)
                        missing -= 1
                        self.reopened += 1
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.error = exc

    def state(self) -> str:
        return (f"{len(self.socks)} held (opened in {self.open_s:.1f} s), {self.reopened} reopened, "
                f"{self.failed_reopens} reopen failures, "
                f"holder {'alive' if self._thread.is_alive() else 'dead: ' + repr(self.error)}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in self.socks:
            s.close()


def _accept_queue(port: int) -> int:
    """Connections waiting in the listen queue of 127.0.0.1:`port` (/proc/net/tcp, state LISTEN)."""
    local = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if f[1] == local and f[3] == "0A":
            return int(f[4].split(":")[1], 16)
    return 0


def _http_refused(ast: DevAsterisk) -> bool:
    try:
        httpx.get(f"{ast.ari_url}/ari/asterisk/info", auth=(ARI_USER, ast.ari_password), timeout=2)
    except httpx.TransportError:
        return True
    return False


def test_a_caller_is_answered_while_others_hold_every_http_session(asterisk: DevAsterisk, controller_factory,
                                                                   phones, softphone, tmp_path: Path) -> None:
    ctl = controller_factory(asterisk, scripted_asr=scripted(tmp_path, ["Bonjour."])).start()
    ctl.wait_ready(1, timeout=20)
    attack = HalfOpen(asterisk.ports.http, HALF_OPEN)
    try:
        assert len(attack.socks) == HALF_OPEN
        assert phones.wait_until(lambda: _http_refused(asterisk), 5), \
            f"HTTP still answers: no lock-out to test ({attack.state()})"
        # Our own pooled HTTP connections expire meanwhile (httpx: 5 s idle): the call must do without.
        phones.wait_until(lambda: False, 6.0)
        placed = time.monotonic()
        call = phones.call(softphone, asterisk.sip_uri, tmp_path / "heard.wav", caller_number=CALLER_NUMBER)
        assert phones.wait_until(lambda: call.confirmed, 5), "the caller was not answered"
        assert call.confirmed_at is not None and call.confirmed_at - placed <= 2.0, \
            f"answered after {call.confirmed_at - placed:.1f} s" if call.confirmed_at else "never answered"
        assert phones.wait_until(lambda: heard_speech_between(call.heard_so_far(), 0, 10) > 1.0, 10), \
            "no greeting heard"
        # Whether our requests went over the websocket depends on a race this test cannot fix (a slot
        # freed by our own expired keep-alive connection, taken again by us or by the attacker);
        # the websocket path itself is tested below, with HTTP refused outright.
        over_ws = "requests go over the events websocket" in ctl.log()
        call.hang_up()
        phones.wait_until(lambda: call.ended, 5)
        print(f"\nlock-out: {HALF_OPEN} half-open connections opened in {attack.open_s:.2f} s "
              f"({attack.reopened} reopened after Asterisk closed them); "
              f"answered {call.confirmed_at - placed:.2f} s after the INVITE; requests "
              f"{'over the websocket' if over_ws else 'over HTTP'}")
    finally:
        attack.close()
    assert phones.wait_until(lambda: not _http_refused(asterisk), 10)
    assert leftovers(asterisk) == ([], [])
    assert ctl.proc is not None and ctl.proc.poll() is None


def test_with_http_refused_every_request_goes_over_the_events_websocket(asterisk: DevAsterisk) -> None:
    """The real Asterisk's websocket, HTTP pointed at a port where nothing listens (refused at once):
    reads, writes with parameters, a missing resource, errors and a body all come back as over HTTP."""
    from agent.telephony.ari import AriClient, AriError

    async def go() -> dict[str, object]:
        ari = AriClient(asterisk.ari_url, ARI_USER, asterisk.ari_password, "standardiste")
        await ari._http.aclose()
        ari._http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{_closed_port()}/ari", timeout=2)
        stop = asyncio.Event()
        events = ari.events(stop)
        await anext(events)  # Connected
        reader = asyncio.ensure_future(anext(events, None))  # keeps reading: the answers arrive there
        out: dict[str, object] = {}
        out["info"] = (await ari.request("GET", "/asterisk/info"))["system"]["version"]
        out["bridge"] = (await ari.request("POST", "/bridges/sd-bridge-ws", params={"type": "mixing"}))["bridge_type"]
        out["listed"] = [b["id"] for b in await ari.request("GET", "/bridges")]
        out["deleted"] = await ari.request("DELETE", "/bridges/sd-bridge-ws")
        out["missing"] = await ari.request("GET", "/channels/nope", missing_ok=True)
        try:
            await ari.request("POST", "/channels/nope/variable", body={"variable": "A", "value": "b"})
        except AriError as exc:
            out["error"] = (exc.status, str(exc))
        out["over_websocket"] = ari.over_websocket
        stop.set()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await events.aclose()
        await ari.close()
        return out

    out = asyncio.run(go())
    assert str(out["info"]).startswith("22.")
    assert out["bridge"] == "mixing" and out["listed"] == ["sd-bridge-ws"] and out["deleted"] is None
    assert out["missing"] is None
    assert out["error"][0] == 404 and "Channel not found" in out["error"][1]  # type: ignore[index]
    assert out["over_websocket"] == 6


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
