"""The ARI controller: turns events into `Call`s, runs them concurrently, re-adopts after reconnects."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from agent.config import Config
from agent.telephony.ari import AriClient, AriError
from agent.telephony.call import Call
from agent.telephony.events import Channel, Connected, Event, StasisStart
from agent.tts.prompts import Prompt

log = logging.getLogger(__name__)

INBOUND_ARG: Final = "inbound"
"""First Stasis() argument of a caller's channel (extensions.conf [standardiste-answer])."""
SHUTDOWN_GRACE_S: Final = 5.0
"""On stop, calls get this long to release their resources before they are cancelled, seconds."""


class Controller:
    def __init__(self, config: Config, ari: AriClient, greeting: Prompt) -> None:
        self.config = config
        self.ari = ari
        self.greeting = greeting
        # Every channel or playback id a live call owns -> that call (routing of events).
        self._owners: dict[str, Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls_started = 0
        self.ready = asyncio.Event()
        """Set once the events websocket is connected and live channels are re-read."""

    async def run(self, stop: asyncio.Event) -> None:
        await self.ari.check_operations()
        log.info("ARI operations checked against the live Asterisk; waiting for calls on app %r",
                 self.ari.app)
        try:
            async for event in self.ari.events(stop):
                await self._dispatch(event)
        finally:
            await self._shutdown()

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
        adopted = 0
        for raw in listing or []:
            channel = Channel.from_json(raw)
            if channel.id in self._owners or not channel.in_app(self.ari.app):
                continue
            args = channel.dialplan_app_data.split(",")[1:2]
            if args == [INBOUND_ARG]:
                self._start_call(channel, adopted=True)
                adopted += 1
        if adopted:
            log.info("re-adopted %d call(s) still in the application", adopted)

    def _start_call(self, channel: Channel, *, adopted: bool) -> None:
        call = Call(self.ari, channel.id, greeting=self.greeting, answered=channel.state == "Up",
                    adopted=adopted, max_prompt_s=self.config.call.max_greeting_seconds,
                    register=self._owners.__setitem__, unregister=self._forget)
        self._owners[channel.id] = call
        self.calls_started += 1
        task = asyncio.create_task(call.run(), name=f"call-{call.tag}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget(self, resource_id: str) -> None:
        self._owners.pop(resource_id, None)

    @property
    def active_calls(self) -> int:
        return len(self._tasks)

    async def _shutdown(self) -> None:
        if not self._tasks:
            return
        log.info("stopping: %d call(s) in progress", len(self._tasks))
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_S)
