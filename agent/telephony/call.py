"""One `Call` per caller channel: it owns everything the call creates and releases it in `finally`.

The call answers, sets up its media (ExternalMedia RTP in a mixing bridge), then runs a
*script*: an async function given the call, which talks through the primitives here (`say`,
`listen`, `ring`/`bridge_to` for a transfer, `hand_off` to the dialplan). Telephony knows nothing
of the dialogue: the script is the session's (agent/session/).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, TypeVar

from agent.audio.frames import AudioFrame
from agent.audio.utterance import Utterance
from agent.telephony.ari import AriClient, AriError
from agent.telephony.events import Channel, ChannelGone, Event, StasisEnd, StasisStart
from agent.telephony.media import CallMedia, CallTrace, MediaSettings

log = logging.getLogger(__name__)

HANGUP_GRACE_S: Final = 0.3
"""Silence left after the last prompt before hanging up, so its tail is not cut, seconds."""
FALLBACK_CONTEXT: Final = "standardiste-answer"
FALLBACK_LABEL: Final = "fallback"
"""The dialplan's voice-message branch: where a call goes when we cannot handle it ourselves."""
MAX_UTTERANCE_S: Final = 120.0
"""Longest a caller may talk in one go before `listen` gives up waiting for the end, seconds."""



async def to_dialplan(ari: AriClient, channel_id: str, context: str = FALLBACK_CONTEXT, *,
                      label: str | None = FALLBACK_LABEL, extension: str = "s") -> None:
    """ARI continue: the channel leaves Stasis for the dialplan (by default the voice message of
    asterisk-conf/extensions.conf); a channel already gone is not an error."""
    params = {"context": context, "extension": extension}
    if label:
        params["label"] = label
    else:
        params["priority"] = "1"
    await ari.request("POST", f"/channels/{channel_id}/continue", missing_ok=True, params=params)

class CallOutcome(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    CALLER_HUNG_UP = "caller hung up"
    TRANSFERRED = "transferred"
    """Bridged to the artisan inside Asterisk; ended when either side hung up."""
    HANDED_OFF = "handed to the dialplan"
    """Sent on with ARI continue (voice-message branch, or the blind-transfer context)."""
    MEDIA_FAILED = "media failed: voice message"
    INTERNAL_ERROR = "internal error: voice message"
    ARI_ERROR = "ARI error"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted: controller restarted"
    """Left open by a run that stopped mid-call (kill -9, power cut); closed at the next start."""
    OVER_CAPACITY = "over capacity: voice message"
    """Arrived while `call.max_concurrent` conversations were going on: the dialplan's voice message."""


class CallerGone(Exception):
    """The caller hung up (or the channel vanished): stop at once, release, save."""


@dataclass(frozen=True)
class CallInfo:
    """What Asterisk told us about the caller's channel when it entered the application."""

    channel_id: str
    caller_number: str
    """As presented by the trunk; empty or 'anonymous' when withheld. Personal data: never logged."""
    args: tuple[str, ...] = ()
    """The Stasis() arguments: ("inbound", DID) or ("transfer_failed", DIALSTATUS)."""
    answered: bool = False
    adopted: bool = False

    @property
    def kind(self) -> str:
        return self.args[0] if self.args else ""

    @property
    def did(self) -> str:
        return self.args[1] if self.kind == "inbound" and len(self.args) > 1 else ""

    @classmethod
    def from_channel(cls, channel: Channel, args: tuple[str, ...], *, adopted: bool = False) -> CallInfo:
        return cls(channel.id, channel.caller_number, args, answered=channel.state == "Up", adopted=adopted)


Script = Callable[["Call"], Awaitable[None]]
T = TypeVar("T")


@dataclass
class _Waiter:
    match: Callable[[Event], bool]
    future: asyncio.Future[Event] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Call:
    """A caller's channel in our Stasis application, from StasisStart to release."""

    def __init__(self, ari: AriClient, info: CallInfo, *, media: MediaSettings, script: Script,
                 register: Callable[[str, Call], None], unregister: Callable[[str, Call], None]) -> None:
        self.ari = ari
        self.info = info
        self.channel_id = info.channel_id
        self.media_settings = media
        self.script = script
        self._answered = info.answered
        self._register = register
        self._unregister = unregister
        self._gone = asyncio.Event()
        self._leaving = False
        """Set while we send the caller on to the dialplan: the StasisEnd that follows is expected."""
        self._owned: set[str] = set()
        self._legs: set[str] = set()
        """Outbound channels (the artisan's) we created: hung up at release unless bridged away."""
        self._waiters: list[_Waiter] = []
        self._at_end: list[Callable[[Call], object]] = []
        self.trace = CallTrace()
        self.media: CallMedia | None = None
        self.started = time.monotonic()
        self.outcome = CallOutcome.RUNNING
        # Short, non-personal label for logs: the channel id is a timestamp.sequence, no number.
        self.tag = info.channel_id[-10:]
        self.trace.mark("stasis_start")
        self._own(info.channel_id)

    # --- events --------------------------------------------------------------------------------
    def deliver(self, event: Event) -> None:
        """Called by the controller for every event about a channel this call owns."""
        if isinstance(event, ChannelGone) and event.channel.id == self.channel_id:
            self._gone.set()
        elif isinstance(event, StasisEnd) and event.channel.id == self.channel_id and not self._leaving:
            self._gone.set()
        elif (isinstance(event, StasisStart) and self.media is not None
              and event.channel.id == self.media.media_channel_id):
            self.media.in_stasis.set()
        for waiter in list(self._waiters):
            if not waiter.future.done() and waiter.match(event):
                waiter.future.set_result(event)

    async def wait_event(self, match: Callable[[Event], bool], within_s: float) -> Event | None:
        """The next event this call receives that `match`es, or None after `within_s` seconds.
        Raises CallerGone if the caller leaves first."""
        waiter = _Waiter(match)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(self._unless_gone(waiter.future), within_s)
        except TimeoutError:
            # An event delivered as the time ran out is still the answer.
            return waiter.future.result() if waiter.future.done() and not waiter.future.cancelled() else None
        finally:
            self._waiters.remove(waiter)

    def at_end(self, fn: Callable[[Call], object]) -> None:
        """Call `fn(call)` once the call is over and released, with its final outcome and trace."""
        self._at_end.append(fn)

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
    async def say(self, frames: Iterable[AudioFrame] | AsyncIterator[AudioFrame]) -> bool:
        """Play to the caller; True if played to the end, False if the caller barged in."""
        assert self.media is not None
        try:
            return await self._unless_gone(self.media.play(frames))
        finally:
            if self.gone and self.media is not None:
                self.media.stop_playback()

    async def listen(self, within_s: float) -> Utterance | None:
        """The caller's next utterance once it has ended, or None if they did not start one within
        `within_s`. One that ends as the time runs out is still returned, never lost."""
        assert self.media is not None
        turns = self.media.turns
        deadline = time.monotonic() + within_s
        while True:
            utterance = turns.take()
            if utterance is not None:
                return utterance
            if self.gone:
                raise CallerGone
            remaining = deadline - time.monotonic()
            if self.media.in_speech:
                remaining = max(remaining, MAX_UTTERANCE_S)  # they are talking: let them finish
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._unless_gone(turns.wait()), remaining)

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self._op("POST", f"/channels/{channel_id}/variable", variable=name, value=value)

    async def get_variable(self, name: str) -> str | None:
        try:
            resp = await self.ari.request("GET", f"/channels/{self.channel_id}/variable", params={"variable": name})
        except AriError as exc:
            if exc.status == 404:
                return None
            raise
        value = (resp or {}).get("value")
        return str(value) if value else None

    async def hand_off(self, context: str = FALLBACK_CONTEXT, *, label: str | None = FALLBACK_LABEL,
                       extension: str = "s") -> None:
        """Send the caller on to the dialplan (ARI continue); our media leaves the call first, and the
        call is ours no more: the StasisEnd that follows is expected, the channel is not hung up."""
        await self._release_media()
        self._leaving = True
        # The channel may come back at once (a blind transfer to an unreachable target fails in
        # milliseconds), and its new StasisStart can arrive before the answer to `continue`: it must
        # already be nobody's, so that the controller starts a new call for it.
        self._owned.discard(self.channel_id)
        self._unregister(self.channel_id, self)
        await to_dialplan(self.ari, self.channel_id, context, label=label, extension=extension)
        self.outcome = CallOutcome.HANDED_OFF
        self._gone.set()

    def new_leg(self) -> str:
        """An id for an outbound channel this call will create; events about it come to this call."""
        leg = f"sd-out-{uuid.uuid4().hex[:16]}"
        self._own(leg)
        self._legs.add(leg)
        return leg

    async def hang_up_leg(self, leg: str) -> None:
        try:
            await self.ari.request("DELETE", f"/channels/{leg}", missing_ok=True)
        except AriError as exc:
            if exc.status not in (404, 409):
                raise
        self._legs.discard(leg)

    async def bridge_to(self, leg: str) -> None:
        """Connect the caller with an answered outbound channel inside Asterisk, then take our media
        leg out: no Python in their audio. Returns when either side hangs up; the other is released."""
        assert self.media is not None
        await self._op("POST", f"/bridges/{self.media.bridge_id}/addChannel", channel=leg)
        self._legs.discard(leg)
        await self.media.detach()
        self.trace.mark("transfer_bridged")
        self.outcome = CallOutcome.TRANSFERRED
        leg_gone = asyncio.ensure_future(self.wait_event(
            lambda e: isinstance(e, (ChannelGone, StasisEnd)) and e.channel.id == leg, within_s=24 * 3600.0))
        # Whichever way it ends (the caller leaving makes it raise CallerGone too), it is handled here.
        leg_gone.add_done_callback(lambda t: t.cancelled() or t.exception())
        try:
            await self._unless_gone(leg_gone)
        except CallerGone:
            pass
        finally:
            leg_gone.cancel()
        self._legs.add(leg)  # whoever is left is hung up by _release

    # --- the call ---------------------------------------------------------------------------------
    async def run(self) -> None:
        log.info("call %s: start%s", self.tag, " (adopted after reconnect)" if self.info.adopted else "")
        try:
            if not self._answered:
                await self._op("POST", f"/channels/{self.channel_id}/answer")
                self._answered = True
            self.trace.mark("answered")
            self.media = CallMedia(self.ari, self.channel_id, self.media_settings, self.trace, self._own)
            try:
                await self._unless_gone(self.media.start())
                self.trace.mark("media_ready")
            except AriError as exc:
                # A caller who hangs up during set-up makes it fail ("Channel not found" on
                # addChannel) before their hang-up event arrives: ask Asterisk before blaming media.
                if await self._caller_left():
                    raise CallerGone from exc
                # No media, no conversation: the dialplan still takes a voice message.
                log.error("call %s: media set-up failed (%s); handing over to the voice message", self.tag, exc)
                await self.hand_off()
                self.outcome = CallOutcome.MEDIA_FAILED
                return
            await self.script(self)
            if self.outcome is CallOutcome.RUNNING:
                await asyncio.sleep(HANGUP_GRACE_S)
                self.outcome = CallOutcome.COMPLETED
        except CallerGone:
            if self.outcome is CallOutcome.RUNNING:
                self.outcome = CallOutcome.CALLER_HUNG_UP
        except asyncio.CancelledError:
            self.outcome = CallOutcome.CANCELLED
            raise
        except AriError as exc:
            self.outcome = CallOutcome.ARI_ERROR
            log.error("call %s: %s", self.tag, exc)
        except Exception:
            # A bug must not cost the caller: log it, and the dialplan still takes a voice message.
            self.outcome = CallOutcome.INTERNAL_ERROR
            log.exception("call %s: internal error; handing over to the voice message", self.tag)
            if not self.gone:
                try:
                    await self.hand_off()
                except AriError as exc:
                    log.warning("call %s: could not hand over to the dialplan: %s", self.tag, exc)
                self.outcome = CallOutcome.INTERNAL_ERROR
        finally:
            await self._release()
            log.info("call %s: end after %.1f s: %s", self.tag, time.monotonic() - self.started, self.outcome)
            for fn in self._at_end:
                fn(self)

    async def _op(self, method: str, path: str, **params: str) -> object:
        """An ARI operation on the caller's channel; "not found" means the caller is gone."""
        if self.gone:
            raise CallerGone
        try:
            return await self.ari.request(method, path, params=params or None)
        except AriError as exc:
            if exc.status in (404, 409) and self.channel_id in path:
                self._gone.set()
                raise CallerGone from exc
            raise

    async def _caller_left(self) -> bool:
        """Whether the caller's channel is gone, asking Asterisk if its events have not said so yet."""
        try:
            await self._op("GET", f"/channels/{self.channel_id}")
        except CallerGone:
            return True
        except AriError:
            return False
        return False

    async def _release_media(self) -> None:
        if self.media is not None:
            try:
                await self.media.close()
            except AriError as exc:
                log.warning("call %s: media release: %s", self.tag, exc)

    async def _release(self) -> None:
        """Release every Asterisk resource this call created, each step in its own try."""
        for leg in list(self._legs):
            try:
                await self.hang_up_leg(leg)
            except AriError as exc:
                log.warning("call %s: could not hang up an outbound leg: %s", self.tag, exc)
        await self._release_media()
        if not self.gone and self.outcome is CallOutcome.CANCELLED:
            # The controller is stopping: the dialplan's voice message rather than a dropped call.
            try:
                await self.hand_off()
            except AriError as exc:
                log.warning("call %s: could not hand over to the dialplan: %s", self.tag, exc)
            self.outcome = CallOutcome.CANCELLED
        if not self.gone:
            try:
                await self.ari.request("DELETE", f"/channels/{self.channel_id}", missing_ok=True)
            except AriError as exc:
                log.warning("call %s: could not hang up: %s", self.tag, exc)
        for waiter in self._waiters:
            waiter.future.cancel()
        for resource_id in self._owned:
            self._unregister(resource_id, self)

