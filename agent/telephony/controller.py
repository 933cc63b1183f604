"""The ARI controller: turns events into `Call`s, runs them concurrently, and after every
(re)connection cleans up what a previous run left in Asterisk."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Final

from agent.telephony.ari import AriClient, AriError, AriUnavailable
from agent.telephony.call import Call, CallInfo, CallOutcome, Script, to_dialplan
from agent.telephony.events import Channel, ChannelGone, Connected, Event, StasisStart
from agent.telephony.media import MediaSettings

log = logging.getLogger(__name__)

INBOUND_ARG: Final = "inbound"
"""First Stasis() argument of a caller's channel (extensions.conf [standardiste-answer])."""
TRANSFER_FAILED_ARG: Final = "transfer_failed"
"""First Stasis() argument of a caller back from a failed blind transfer ([standardiste-transfer])."""
CALL_ARGS: Final = (INBOUND_ARG, TRANSFER_FAILED_ARG)
OWN_PREFIXES: Final = ("sd-media-", "sd-out-", "sd-bridge-")
"""Ids of the channels and bridges this application creates: what a dead run may leave behind."""
STARTUP_RETRY_INITIAL_S: Final = 0.5
STARTUP_RETRY_MAX_S: Final = 2.0
"""Backoff while Asterisk is unreachable at start-up, seconds (capped low: on loopback a retry costs
nothing, and a box booting or an Asterisk restarting is answered within 2 s of being up)."""
SHUTDOWN_GRACE_S: Final = 5.0
"""On stop, calls get this long to release their resources before they are cancelled, seconds."""
ORPHAN_GRACE_S: Final = 0.5
"""A caller listed in our application but not ours is left this long for its StasisStart (it may
have just arrived) before it counts as left behind by a previous run, seconds."""
FINISHED_KEPT: Final = 50

CallFactory = Callable[[CallInfo], Script]
"""Picks the script for a call (the session's conversation, a failed-transfer follow-up)."""
OverCapacity = Callable[[CallInfo, CallOutcome], Awaitable[None]]
"""Told of each caller handed to the voice message because `max_calls` were going on (to keep a
record of the call: its voice message is attached to it later, by the caller's channel)."""


class Controller:
    def __init__(self, ari: AriClient, media: MediaSettings, scripts: CallFactory, *, max_calls: int | None = None,
                 over_capacity: OverCapacity | None = None) -> None:
        self.ari = ari
        self.media = media
        self.scripts = scripts
        self.max_calls = max_calls
        """Conversations at once; a new caller beyond it goes straight to the dialplan's voice message
        (no answer, no media leg here: one RTP port pair in Asterisk instead of two, no recogniser)."""
        self._over_capacity = over_capacity
        self.over_capacity = 0
        """Callers handed to the voice message because `max_calls` conversations were going on."""
        self._live: set[Call] = set()
        self.finished: list[Call] = []
        """Recently ended calls (the last FINISHED_KEPT), with their traces."""
        # Every channel or playback id a live call owns -> that call (routing of events).
        self._owners: dict[str, Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()
        """Set once the events websocket is connected and live channels are re-read."""
        self.calls_started = 0
        self.outcomes: Counter[CallOutcome] = Counter()
        """How every call this controller ran ended (the `finished` list keeps only the last few)."""

    @property
    def calls(self) -> list[Call]:
        return list({id(c): c for c in self._owners.values()}.values())

    async def run(self, stop: asyncio.Event) -> None:
        await self._check_api(stop)
        log.info("ARI operations checked against the live Asterisk; waiting for calls on app %r",
                 self.ari.app)
        try:
            async for event in self.ari.events(stop):
                await self._dispatch(event)
        finally:
            await self._shutdown()

    async def _check_api(self, stop: asyncio.Event) -> None:
        """Wait for Asterisk (the box may still be booting), then check the operations we use."""
        delay = STARTUP_RETRY_INITIAL_S
        while True:
            try:
                await self.ari.check_operations()
                return
            except AriUnavailable as exc:
                log.warning("%s; retrying in %.1f s", exc, delay)
            try:
                await asyncio.wait_for(stop.wait(), delay)
                raise AriUnavailable("stopped before Asterisk became reachable")
            except TimeoutError:
                delay = min(delay * 2, STARTUP_RETRY_MAX_S)

    async def _dispatch(self, event: Event) -> None:
        if isinstance(event, Connected):
            self.ready.clear()
            await self._resync()
            self.ready.set()
            return
        if isinstance(event, StasisStart) and event.channel.id not in self._owners:
            if event.args[:1] and event.args[0] in CALL_ARGS:
                info = CallInfo.from_channel(event.channel, event.args)
                if info.kind == INBOUND_ARG and self.max_calls is not None and len(self._live) >= self.max_calls:
                    self._spawn(self._hand_over_capacity(info))
                else:
                    self._start_call(info)
            elif event.channel.id.startswith(OWN_PREFIXES):
                # One of ours that no live call owns (its call ended meanwhile): hang it up.
                await self._delete(f"/channels/{event.channel.id}")
            return
        for channel_id in event.channel_ids:
            call = self._owners.get(channel_id)
            if call is not None:
                call.deliver(event)
                return

    async def _resync(self) -> None:
        """After any (re)connection: events were lost. Calls whose caller vanished end; what no live
        call owns (a previous run killed mid-call) is handed to the voice message or removed."""
        try:
            listing = await self.ari.request("GET", "/channels")
            bridges = await self.ari.request("GET", "/bridges")
        except AriError as exc:
            log.warning("could not list channels after reconnecting: %s", exc)
            return
        channels = [Channel.from_json(raw) for raw in listing or []]
        live = {c.id for c in channels}
        for call in set(self._owners.values()):
            if call.channel_id not in live:
                call.deliver(ChannelGone("ChannelDestroyed", {}, channel=_gone(call.channel_id)))
        callers = [c for c in channels if c.id not in self._owners and c.in_app(self.ari.app)
                   and c.dialplan_app_data.split(",")[1:2] and c.dialplan_app_data.split(",")[1] in CALL_ARGS]
        owned = self._owned()
        leftovers = [f"/channels/{c.id}" for c in channels
                     if c.id not in owned and c.id.startswith(OWN_PREFIXES)]
        leftovers += [f"/bridges/{b['id']}" for b in bridges or []
                      if str(b.get("id", "")).startswith(OWN_PREFIXES) and b["id"] not in owned]
        if callers or leftovers:
            self._spawn(self._clean_up([c.id for c in callers], leftovers))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hand_over_capacity(self, info: CallInfo) -> None:
        """A caller beyond `max_calls`: to the dialplan's voice message at once (it answers there)."""
        self.over_capacity += 1
        log.warning("call %s: %d conversations going on (call.max_concurrent): handed to the voice message",
                    info.channel_id[-10:], len(self._live))
        try:
            await to_dialplan(self.ari, info.channel_id)
            outcome = CallOutcome.OVER_CAPACITY
        except AriError as exc:
            log.warning("call %s: could not hand it to the voice message: %s", info.channel_id[-10:], exc)
            outcome = CallOutcome.ARI_ERROR
        if self._over_capacity is not None:
            try:
                await self._over_capacity(info, outcome)
            except Exception:
                log.exception("call %s: the call over capacity could not be recorded", info.channel_id[-10:])

    async def _clean_up(self, callers: list[str], leftovers: list[str]) -> None:
        await asyncio.sleep(ORPHAN_GRACE_S)
        handed = 0
        for channel_id in callers:
            if channel_id in self._owners:
                continue  # its StasisStart came after all: a live call of ours
            try:
                await to_dialplan(self.ari, channel_id)
                handed += 1
            except AriError as exc:
                log.warning("could not hand a left-behind caller to the voice message: %s", exc)
        removed = 0
        for path in leftovers:
            if path.rsplit("/", 1)[1] not in self._owned():  # a call may have taken it meanwhile
                removed += await self._delete(path)
        log.info("left by a previous run: %d caller(s) handed to the voice message, %d channel(s)/bridge(s) "
                 "removed", handed, removed)

    async def _delete(self, path: str) -> int:
        try:
            await self.ari.request("DELETE", path, missing_ok=True)
            return 1
        except AriError as exc:
            log.warning("could not remove %s: %s", path, exc)
            return 0

    def _start_call(self, info: CallInfo) -> None:
        call = Call(self.ari, info, media=self.media, script=self.scripts(info),
                    register=self._owners.__setitem__, unregister=self._forget)
        task = asyncio.create_task(call.run(), name=f"call-{call.tag}")
        self._tasks.add(task)
        self._live.add(call)
        self.calls_started += 1

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._live.discard(call)
            self.outcomes[call.outcome] += 1
            self.finished = [*self.finished[-(FINISHED_KEPT - 1):], call]

        task.add_done_callback(done)

    def _owned(self) -> set[str]:
        """What live calls hold: their channels (events are routed by them) and their media's bridge
        and channel, which get no events (a websocket drop once removed every live call's bridge)."""
        return set(self._owners) | {r for call in self.calls if call.media is not None
                                    for r in (call.media.bridge_id, call.media.media_channel_id)}

    def _forget(self, resource_id: str, call: Call) -> None:
        if self._owners.get(resource_id) is call:
            del self._owners[resource_id]

    async def _shutdown(self) -> None:
        if not self._tasks:
            return
        log.info("stopping: %d call(s) in progress", len(self._tasks))
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_S)


def _gone(channel_id: str) -> Channel:
    return Channel(id=channel_id, name="", state="Down", caller_number="", dialplan_app="", dialplan_app_data="")
