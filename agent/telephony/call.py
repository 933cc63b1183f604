"""One `Call` per caller channel: it owns everything the call creates and releases it in `finally`.

The call answers, sets up its media (ExternalMedia RTP in a mixing bridge), then runs a
conversation *script*: an async function that talks through `say()` and `listen()`. Until the
dialogue lands, the product's script greets, takes a spoken message and says goodbye.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import numpy as np

from agent.audio.frames import AudioFrame
from agent.audio.vad import SpeechDiscarded, SpeechStarted, TurnEvent, UtteranceEnded
from agent.telephony.ari import AriClient, AriError
from agent.telephony.events import ChannelGone, Event, StasisEnd
from agent.telephony.media import CallMedia, CallTrace, MediaSettings
from agent.tts.prompts import write_wav

log = logging.getLogger(__name__)

HANGUP_GRACE_S: Final = 0.3
"""Silence left after the last prompt before hanging up, so its tail is not cut, seconds."""
FALLBACK_CONTEXT: Final = "standardiste-answer"
FALLBACK_LABEL: Final = "fallback"
"""The dialplan's voice-message branch: where a call goes when we cannot handle it ourselves."""
FIRST_TURN_WAIT_S: Final = 8.0
"""How long the caller may stay silent after the greeting before we close, seconds."""
NEXT_TURN_WAIT_S: Final = 3.0
"""After an utterance, a pause this long means the caller has finished, seconds."""
MAX_MESSAGE_S: Final = 120.0


class CallerGone(Exception):
    """The caller hung up (or the channel vanished): stop at once, release, save."""


@dataclass(frozen=True)
class CallPrompts:
    """Pre-rendered prompts as frames at the media rate: they play with no synthesis delay."""

    greeting: Sequence[AudioFrame]
    goodbye: Sequence[AudioFrame]


@dataclass(frozen=True)
class CallSettings:
    media: MediaSettings
    messages_dir: Path
    """Where the caller's spoken messages are saved (WAV, 8 or 16 kHz)."""
    first_turn_wait_s: float = FIRST_TURN_WAIT_S
    next_turn_wait_s: float = NEXT_TURN_WAIT_S


Script = Callable[["Call"], Awaitable[None]]
T = TypeVar("T")


class Call:
    """A caller's channel in our Stasis application, from StasisStart to release."""

    def __init__(self, ari: AriClient, channel_id: str, *, prompts: CallPrompts, settings: CallSettings,
                 script: Script, answered: bool, adopted: bool,
                 register: Callable[[str, Call], None], unregister: Callable[[str], None]) -> None:
        self.ari = ari
        self.channel_id = channel_id
        self.prompts = prompts
        self.settings = settings
        self.script = script
        self.adopted = adopted
        self._answered = answered
        self._register = register
        self._unregister = unregister
        self._gone = asyncio.Event()
        self._owned: set[str] = {channel_id}
        self.trace = CallTrace()
        self.media: CallMedia | None = None
        self.started = time.monotonic()
        self.outcome = "running"
        # Short, non-personal label for logs: the channel id is a timestamp.sequence, no number.
        self.tag = channel_id[-10:]

    # --- events --------------------------------------------------------------------------------
    def deliver(self, event: Event) -> None:
        """Called by the controller for every event about a channel this call owns."""
        if isinstance(event, (StasisEnd, ChannelGone)) and event.channel.id == self.channel_id:
            self._gone.set()

    def _own(self, resource_id: str) -> None:
        self._owned.add(resource_id)
        self._register(resource_id, self)

    @property
    def gone(self) -> bool:
        return self._gone.is_set()

    async def _unless_gone(self, aw: Awaitable[T]) -> T:
        """Await `aw`, or raise CallerGone as soon as the caller leaves. If we are cancelled (a
        timeout around us), `aw` is cancelled too, so it cannot swallow a later event."""
        task = asyncio.ensure_future(aw)
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            gone.cancel()
        if not task.done():
            task.cancel()
            raise CallerGone
        return task.result()

    # --- what a script uses ----------------------------------------------------------------------
    async def say(self, frames: Sequence[AudioFrame]) -> bool:
        """Play to the caller; True if played to the end, False if the caller barged in."""
        assert self.media is not None
        try:
            return await self._unless_gone(self.media.play(frames))
        finally:
            if self.gone and self.media is not None:
                self.media.stop_playback()

    async def listen(self, within_s: float) -> UtteranceEnded | None:
        """The caller's next utterance, or None if they did not start one within `within_s`."""
        assert self.media is not None
        deadline = time.monotonic() + within_s
        while True:
            remaining = deadline - time.monotonic()
            if self.media_in_speech():
                remaining = max(remaining, MAX_MESSAGE_S)  # they are talking: let them finish
            if remaining <= 0:
                return None
            try:
                event: TurnEvent = await asyncio.wait_for(self._unless_gone(self.media.turns.get()), remaining)
            except TimeoutError:
                if self.media_in_speech():
                    continue
                return None
            if isinstance(event, UtteranceEnded):
                return event
            if isinstance(event, (SpeechStarted, SpeechDiscarded)):
                continue

    def media_in_speech(self) -> bool:
        return self.media is not None and self.media.in_speech

    def save_message(self, utterances: Sequence[UtteranceEnded], path: Path | None = None) -> Path | None:
        """Write what the caller said as one WAV in the messages dir (named by time, no number);
        called again after each utterance with the same path, so a dropped call loses nothing."""
        if not utterances:
            return path
        rate = utterances[0].frames[0].rate
        gap = np.zeros(rate // 4, dtype=np.int16)
        parts: list[np.ndarray] = []
        for u in utterances:
            parts += [f.samples for f in u.frames] + [gap]
        path = path or self.settings.messages_dir / f"message-{int(time.time())}-{self.tag.replace('.', '-')}.wav"
        write_wav(path, np.concatenate(parts), rate)
        return path

    # --- the call ---------------------------------------------------------------------------------
    async def run(self) -> None:
        log.info("call %s: start%s", self.tag, " (adopted after reconnect)" if self.adopted else "")
        try:
            if not self._answered:
                await self._op("POST", f"/channels/{self.channel_id}/answer")
                self._answered = True
            self.trace.mark("answered")
            self.media = CallMedia(self.ari, self.channel_id, self.settings.media, self.trace, self._own)
            try:
                await self._unless_gone(self.media.start())
            except AriError as exc:
                # No media, no conversation: the dialplan still takes a voice message.
                log.error("call %s: media set-up failed (%s); handing over to the voice message", self.tag, exc)
                self.outcome = "media failed: voice message"
                await self._hand_to_dialplan()
                return
            await self.script(self)
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
        except Exception:
            # A bug must not cost the caller: log it, and the dialplan still takes a voice message.
            self.outcome = "internal error: voice message"
            log.exception("call %s: internal error; handing over to the voice message", self.tag)
            if not self.gone:
                try:
                    await self._hand_to_dialplan()
                except AriError as exc:
                    log.warning("call %s: could not hand over to the dialplan: %s", self.tag, exc)
        finally:
            await self._release()
            log.info("call %s: end after %.1f s: %s", self.tag, time.monotonic() - self.started, self.outcome)

    async def _op(self, method: str, path: str, **params: str) -> object:
        """An ARI operation on the caller's channel; "not found" means the caller is gone."""
        if self.gone:
            raise CallerGone
        try:
            return await self.ari.request(method, path, params=params or None)
        except AriError as exc:
            if exc.status in (404, 409):
                self._gone.set()
                raise CallerGone from exc
            raise

    async def _hand_to_dialplan(self) -> None:
        await self.ari.request("POST", f"/channels/{self.channel_id}/continue", missing_ok=True,
                               params={"context": FALLBACK_CONTEXT, "extension": "s", "label": FALLBACK_LABEL})
        self._gone.set()

    async def _release(self) -> None:
        """Release every Asterisk resource this call created, each step in its own try."""
        if self.media is not None:
            try:
                await self.media.close()
            except AriError as exc:
                log.warning("call %s: media release: %s", self.tag, exc)
        if not self.gone and self.outcome == "cancelled":
            # The controller is stopping: the dialplan's voice message rather than a dropped call.
            try:
                await self._hand_to_dialplan()
            except AriError as exc:
                log.warning("call %s: could not hand over to the dialplan: %s", self.tag, exc)
        if not self.gone:
            try:
                await self.ari.request("DELETE", f"/channels/{self.channel_id}", missing_ok=True)
            except AriError as exc:
                log.warning("call %s: could not hang up: %s", self.tag, exc)
        for resource_id in self._owned:
            self._unregister(resource_id)


async def message_script(call: Call) -> None:
    """The product's conversation until the dialogue lands: greet, take a spoken message, goodbye."""
    await call.say(call.prompts.greeting)
    utterances: list[UtteranceEnded] = []
    path: Path | None = None
    wait = call.settings.first_turn_wait_s
    started = time.monotonic()
    while time.monotonic() - started < MAX_MESSAGE_S:
        turn = await call.listen(wait)
        if turn is None:
            break
        call.trace.mark("end_of_utterance", turn.decided_at)
        utterances.append(turn)
        path = call.save_message(utterances, path)
        wait = call.settings.next_turn_wait_s
    if path is not None:
        log.info("call %s: spoken message saved (%d utterance(s))", call.tag, len(utterances))
    await call.say(call.prompts.goodbye)
