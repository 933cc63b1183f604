"""The ARI controller: turns events into `Call`s, runs them concurrently, re-adopts after reconnects."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from agent.telephony.ari import AriClient, AriError, AriUnavailable
from agent.telephony.call import Call, CallPrompts, CallSettings, Script, message_script
from agent.telephony.events import Channel, ChannelGone, Connected, Event, StasisStart

log = logging.getLogger(__name__)

INBOUND_ARG: Final = "inbound"
"""First Stasis() argument of a caller's channel (extensions.conf [standardiste-answer])."""
STARTUP_RETRY_INITIAL_S: Final = 0.5
STARTUP_RETRY_MAX_S: Final = 10.0
"""Backoff while Asterisk is unreachable at start-up, seconds."""
SHUTDOWN_GRACE_S: Final = 5.0
FINISHED_KEPT: Final = 50
"""On stop, calls get this long to release their resources before they are cancelled, seconds."""


class Controller:
    def __init__(self, ari: AriClient, prompts: CallPrompts, settings: CallSettings,
                 script: Script = message_script) -> None:
        self.ari = ari
        self.prompts = prompts
        self.settings = settings
        self.script = script
        self.finished: list[Call] = []
        """Recently ended calls (the last FINISHED_KEPT), with their traces."""
        # Every channel or playback id a live call owns -> that call (routing of events).
        self._owners: dict[str, Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()
        """Set once the events websocket is connected and live channels are re-read."""

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
            if event.args[:1] == (INBOUND_ARG,):
                self._start_call(event.channel, adopted=False)
            return
        for channel_id in event.channel_ids:
            call = self._owners.get(channel_id)
            if call is not None:
                call.deliver(event)
                return

    async def _resync(self) -> None:
        """After any (re)connection: adopt callers still in our application, events were lost."""
        try:
            listing = await self.ari.request("GET", "/channels")
        except AriError as exc:
            log.warning("could not list channels after reconnecting: %s", exc)
            return
        channels = [Channel.from_json(raw) for raw in listing or []]
        live = {c.id for c in channels}
        # Calls whose caller vanished while we were disconnected (e.g. Asterisk restarted).
        for call in set(self._owners.values()):
            if call.channel_id not in live:
                call.deliver(ChannelGone("ChannelDestroyed", {}, channel=_gone(call.channel_id)))
        adopted = 0
        for channel in channels:
            if channel.id in self._owners or not channel.in_app(self.ari.app):
                continue
            args = channel.dialplan_app_data.split(",")[1:2]
            if args == [INBOUND_ARG]:
                self._start_call(channel, adopted=True)
                adopted += 1
        if adopted:
            log.info("re-adopted %d call(s) still in the application", adopted)

    def _start_call(self, channel: Channel, *, adopted: bool) -> None:
        call = Call(self.ari, channel.id, prompts=self.prompts, settings=self.settings, script=self.script,
                    answered=channel.state == "Up", adopted=adopted,
                    register=self._owners.__setitem__, unregister=self._forget)
        self._owners[channel.id] = call
        task = asyncio.create_task(call.run(), name=f"call-{call.tag}")
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self.finished = [*self.finished[-(FINISHED_KEPT - 1):], call]

        task.add_done_callback(done)

    def _forget(self, resource_id: str) -> None:
        self._owners.pop(resource_id, None)

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
