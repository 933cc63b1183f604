"""One `Call` per caller channel: it owns everything the call creates and releases it in `finally`."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Final

from agent.telephony.ari import AriClient, AriError
from agent.telephony.events import ChannelGone, Event, PlaybackEvent, StasisEnd
from agent.tts.prompts import Prompt

log = logging.getLogger(__name__)

HANGUP_GRACE_S: Final = 0.3
"""Silence left after the last prompt before hanging up, so its tail is not cut, seconds."""
FALLBACK_CONTEXT: Final = "standardiste-answer"
FALLBACK_LABEL: Final = "fallback"
"""Where a call goes when the controller stops under it: the dialplan's voice-message branch."""


class CallerGone(Exception):
    """The caller hung up (or the channel vanished): stop at once, release, save."""


class Call:
    """A caller's channel in our Stasis application, from StasisStart to release."""

    def __init__(self, ari: AriClient, channel_id: str, *, greeting: Prompt, answered: bool,
                 adopted: bool, max_prompt_s: float,
                 register: Callable[[str, Call], None], unregister: Callable[[str], None]) -> None:
        self.ari = ari
        self.channel_id = channel_id
        self.greeting = greeting
        self.adopted = adopted
        self.max_prompt_s = max_prompt_s
        self._answered = answered
        self._register = register
        self._unregister = unregister
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._gone = False
        self._playbacks: set[str] = set()
        self._owned: set[str] = {channel_id}
        self.started = time.monotonic()
        self.outcome = "running"
        # Short, non-personal label for logs: the channel id is a timestamp.sequence, no number.
        self.tag = channel_id[-10:]

    # --- events --------------------------------------------------------------------------------
    def deliver(self, event: Event) -> None:
        """Called by the controller for every event about a channel or playback this call owns."""
        if isinstance(event, (StasisEnd, ChannelGone)) and event.channel.id == self.channel_id:
            self._gone = True
        self._events.put_nowait(event)

    def _own(self, resource_id: str) -> None:
        self._owned.add(resource_id)
        self._register(resource_id, self)

    async def _wait_for(self, match: Callable[[Event], bool], within_s: float) -> Event | None:
        """Next event that matches, None on timeout; CallerGone as soon as the caller leaves."""
        deadline = time.monotonic() + within_s
        while True:
            if self._gone:
                raise CallerGone
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                event = await asyncio.wait_for(self._events.get(), remaining)
            except TimeoutError:
                return None
            if isinstance(event, (StasisEnd, ChannelGone)) and event.channel.id == self.channel_id:
                raise CallerGone
            if match(event):
                return event

    # --- ARI operations, each turning "channel not found" into CallerGone -------------------------
    async def _op(self, method: str, path: str, **params: str) -> object:
        if self._gone:
            raise CallerGone
        try:
            return await self.ari.request(method, path, params=params or None)
        except AriError as exc:
            if exc.status in (404, 409):  # channel gone, or no longer in our application
                self._gone = True
                raise CallerGone from exc
            raise

    async def play(self, prompt: Prompt) -> None:
        """Play a prompt to the caller and wait until it has been played."""
        playback_id = f"sd-pb-{uuid.uuid4().hex}"
        self._own(playback_id)
        self._playbacks.add(playback_id)
        await self._op("POST", f"/channels/{self.channel_id}/play/{playback_id}", media=prompt.media_uri)
        limit = min(self.max_prompt_s, prompt.duration_s + 5.0)
        done = await self._wait_for(
            lambda e: isinstance(e, PlaybackEvent) and e.playback_id == playback_id
            and e.type == "PlaybackFinished", limit)
        self._playbacks.discard(playback_id)
        if done is None:
            log.warning("call %s: playback did not finish within %.1f s; stopping it", self.tag, limit)
            await self.ari.request("DELETE", f"/playbacks/{playback_id}", missing_ok=True)
        elif isinstance(done, PlaybackEvent) and done.state == "failed":
            raise AriError(f"playback of {prompt.path.name} failed", retryable=False)

    # --- the call ---------------------------------------------------------------------------------
    async def run(self) -> None:
        log.info("call %s: start%s", self.tag, " (adopted after reconnect)" if self.adopted else "")
        try:
            if not self._answered:
                await self._op("POST", f"/channels/{self.channel_id}/answer")
                self._answered = True
            await self.play(self.greeting)
            await asyncio.sleep(HANGUP_GRACE_S)
            self.outcome = "completed"
        except CallerGone:
            self.outcome = "caller hung up"
        except asyncio.CancelledError:
            self.outcome = "cancelled"
            raise
        except AriError as exc:
            self.outcome = f"error ({exc})"
            log.error("call %s: %s", self.tag, exc)
        finally:
            await self._release()
            log.info("call %s: end after %.1f s: %s", self.tag, time.monotonic() - self.started,
                     self.outcome)

    async def _release(self) -> None:
        """Release every Asterisk resource this call created, each in its own try."""
        for playback_id in list(self._playbacks):
            try:
                await self.ari.request("DELETE", f"/playbacks/{playback_id}", missing_ok=True)
            except AriError as exc:
                log.warning("call %s: could not stop a playback: %s", self.tag, exc)
        if not self._gone and self.outcome == "cancelled":
            # The controller is stopping: hand the caller to the dialplan's voice message
            # rather than dropping them.
            try:
                await self.ari.request("POST", f"/channels/{self.channel_id}/continue", missing_ok=True,
                                       params={"context": FALLBACK_CONTEXT, "extension": "s",
                                               "label": FALLBACK_LABEL})
                self._gone = True
            except AriError as exc:
                log.warning("call %s: could not hand over to the dialplan: %s", self.tag, exc)
        if not self._gone:
            try:
                await self.ari.request("DELETE", f"/channels/{self.channel_id}", missing_ok=True)
            except AriError as exc:
                log.warning("call %s: could not hang up: %s", self.tag, exc)
        for resource_id in self._owned:
            self._unregister(resource_id)
