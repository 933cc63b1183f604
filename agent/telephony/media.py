"""The call's audio path: an ExternalMedia channel in a mixing bridge with the caller, RTP both ways.

In: RTP -> jitter buffer -> G.711/slin decode -> AudioFrame -> turn detector (and barge-in check)
    -> `turns` queue for the conversation, `heard` frames for whoever listens.
Out: `play()` queues AudioFrames; one sender on a monotonic 20 ms clock sends them with at most
    `lead_frames` of lead (a mixing bridge flushes a channel more than 80 ms ahead), silence when
    idle; `stop_playback()` takes effect at the next tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from agent.audio.barge_in import BargeIn, BargeInSettings
from agent.audio.frames import FRAME_S, AudioFrame, samples_per_frame
from agent.audio.g711 import ulaw_decode, ulaw_encode
from agent.audio.utterance import EndedUtterances, Utterance
from agent.audio.vad import (
    Paused,
    SpeechStarted,
    TurnDetector,
    TurnEvent,
    UtteranceEnded,
    VadSettings,
)
from agent.telephony.ari import AriClient, AriError
from agent.telephony.rtp import RtpSocket, RtpStats

log = logging.getLogger(__name__)

MAX_LEAD_FRAMES: Final = 3
SENDER_RESET_S: Final = 0.2
"""If the sender falls this far behind (event loop stalled), it skips ahead instead of bursting."""
HEARD_LIMIT: Final = 3000
"""Frames of caller audio kept for a listener (60 s); older ones are dropped."""
PLAY_AHEAD_FRAMES: Final = 50
"""Frames of a playback queued ahead of the sender at most (1 s): an endless source is read as it plays."""
JOIN_RETRY_BUDGET_S: Final = 2.0
JOIN_RETRY_STEP_S: Final = 0.01
"""ExternalMedia answers before its channel has entered the application; adding it to the bridge
then fails with 422 "not in Stasis". We wait for its StasisStart, and still retry a 422 every step
for at most the budget, seconds."""


@dataclass(frozen=True)
class MediaSettings:
    format: str = "ulaw"
    """G.711 µ-law at 8 kHz, payload type 0 (the only format that works both ways, see FORMATS)."""
    bind_host: str = "127.0.0.1"
    """Address of our RTP socket; Asterisk must reach it (same box: loopback)."""
    lead_frames: int = 1
    keep_heard: bool = False
    """Keep the caller's last 60 s of frames in `CallMedia.heard` (the audio tests read them). Off on a
    box: a finished call is kept a while for its trace, and 50 of them held up to 100 MB of frames
    (`make soak` found the service growing by 0.2 MB a call)."""
    vad: VadSettings = field(default_factory=VadSettings)
    barge_in: BargeInSettings = field(default_factory=BargeInSettings)

    @property
    def rate(self) -> int:
        return FORMATS[self.format].rate


@dataclass(frozen=True)
class Codec:
    payload_type: int
    rate: int
    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[bytes], np.ndarray]


FORMATS: Final = {
    "ulaw": Codec(0, 8000, ulaw_encode, ulaw_decode),
}
"""What the ExternalMedia leg may carry; Asterisk transcodes to the trunk's codec (A-law in France).
Measured on Asterisk 22.10.1 and not offered: slin16 (PT 118) is sent by chan_rtp but dropped on
receive, so the caller hears nothing; alaw (PT 8) reaches the caller distorted (NCC 0.6 against
what we sent, where ulaw gives 0.99). See README."""


class CallTrace:
    """Timestamps of one call's turn-taking, for latency reports: (name, monotonic s)."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.marks: list[tuple[str, float]] = []

    def mark(self, name: str, at: float | None = None) -> None:
        self.marks.append((name, time.monotonic() if at is None else at))
        log.debug("trace %s at %.3f s", name, self.marks[-1][1] - self.t0)

    def all(self, name: str) -> list[float]:
        return [t for n, t in self.marks if n == name]

    def as_dict(self) -> list[dict[str, object]]:
        return [{"event": n, "ms": round((t - self.t0) * 1000, 1)} for n, t in self.marks]


class CallMedia:
    def __init__(self, ari: AriClient, caller_channel_id: str, settings: MediaSettings, trace: CallTrace,
                 own: Callable[[str], None]) -> None:
        if settings.format not in FORMATS:
            raise ValueError(f"media format {settings.format!r}: expected one of {', '.join(FORMATS)}")
        self.ari = ari
        self.caller_channel_id = caller_channel_id
        self.settings = settings
        self.codec = FORMATS[settings.format]
        self.rate = self.codec.rate
        self.trace = trace
        self._own = own
        self.stats = RtpStats()
        self.media_channel_id = f"sd-media-{uuid.uuid4().hex[:16]}"
        self.bridge_id = f"sd-bridge-{uuid.uuid4().hex[:16]}"
        self.turns = EndedUtterances()
        """Each utterance once it has ended (`Call.listen`)."""
        self.heard: deque[AudioFrame] = deque(maxlen=HEARD_LIMIT if settings.keep_heard else 0)
        self.on_utterance: Callable[[Utterance], None] | None = None
        """Called with each utterance as the caller starts it (its frames, pauses and end follow in
        it as they arrive): a recogniser fed from it has its text ready right after its end."""
        self._utterance: Utterance | None = None
        self.join_retries = 0
        self.in_stasis = asyncio.Event()
        """Set by the call when our media channel's StasisStart arrives: only then may it join a bridge."""
        self._detector = TurnDetector(settings.vad, self.rate)
        self._socket: RtpSocket | None = None
        self._sender: asyncio.Task[None] | None = None
        self._bridge_made = False
        self._media_made = False
        # Inbound media clock: frame n arrives at about _in_t0 + n x 20 ms.
        self._in_t0: float | None = None
        self._in_count = 0
        # Outbound.
        self._out: deque[AudioFrame] = deque()
        self._speaking = False
        self._barge_in = BargeIn(settings.barge_in)
        self.send_late_max_s = 0.0
        """The most a frame of ours was sent after its time (the call's event loop held up), s."""
        self._played = asyncio.Event()
        self._room = asyncio.Event()
        """Set when the playback queue has room again."""
        self._barged_in = False
        self._interruptible = True
        self._first_frame_pending = False
        self._input_open = False
        self.last_speech_sent_at = 0.0
        """When the last frame of our speech (not idle silence) was sent, monotonic s."""

    # --- set-up and release -------------------------------------------------------------------
    async def start(self) -> None:
        self._socket = await RtpSocket.open(self.settings.bind_host, self.codec.payload_type,
                                            self._on_payload, self.stats)
        host, port = self._socket.local_address
        self._own(self.media_channel_id)
        # Marked made before each request: a caller who hangs up while it is in flight cancels this
        # task after Asterisk made the thing, and close() must still remove it (a 404 is fine).
        self._media_made = True
        resp = await self.ari.request("POST", "/channels/externalMedia", params={
            "channelId": self.media_channel_id, "app": self.ari.app, "external_host": f"{host}:{port}",
            "format": self.settings.format, "encapsulation": "rtp", "transport": "udp",
            "connection_type": "client", "direction": "both"})
        variables = (resp or {}).get("channelvars", {})
        self._socket.remote = (str(variables["UNICASTRTP_LOCAL_ADDRESS"]),
                               int(variables["UNICASTRTP_LOCAL_PORT"]))
        self._bridge_made = True
        await self.ari.request("POST", f"/bridges/{self.bridge_id}", params={"type": "mixing",
                                                                             "name": "standardiste"})
        try:
            await asyncio.wait_for(self.in_stasis.wait(), JOIN_RETRY_BUDGET_S)
        except TimeoutError:
            log.warning("the media channel's StasisStart did not come; joining the bridge anyway")
        await self._join_bridge()
        self._sender = asyncio.create_task(self._send_loop(), name=f"rtp-send-{self.media_channel_id[-6:]}")

    async def _join_bridge(self) -> None:
        """Both channels into the bridge, retrying while the media channel is not yet in Stasis."""
        deadline = time.monotonic() + JOIN_RETRY_BUDGET_S
        while True:
            try:
                await self.ari.request("POST", f"/bridges/{self.bridge_id}/addChannel",
                                       params={"channel": f"{self.caller_channel_id},{self.media_channel_id}"})
                return
            except AriError as exc:
                if exc.status != 422 or time.monotonic() > deadline:
                    raise
                self.join_retries += 1
                await asyncio.sleep(JOIN_RETRY_STEP_S)

    @property
    def socket_open(self) -> bool:
        return self._socket is not None and not self._socket.closed

    async def detach(self) -> None:
        """Take our media leg out of the call and close its socket; the bridge stays with whoever is
        left in it (the caller and the artisan after a transfer) until `close()`."""
        await self._stop_sender()
        self._played.set()
        self._room.set()
        if self._media_made:
            self._media_made = False
            try:
                await self.ari.request("DELETE", f"/channels/{self.media_channel_id}", missing_ok=True)
            except AriError as exc:
                log.warning("could not hang up the media channel: %s", exc)
        if self._socket is not None:
            self._socket.close()

    async def _stop_sender(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            try:
                await self._sender
            except asyncio.CancelledError:
                pass
            self._sender = None

    async def close(self) -> None:
        """Release in reverse order; each step in its own try so one failure does not leak the rest.
        Safe to call more than once."""
        await self.detach()
        if self._bridge_made:
            self._bridge_made = False
            try:
                await self.ari.request("DELETE", f"/bridges/{self.bridge_id}", missing_ok=True)
            except AriError as exc:
                log.warning("could not destroy the bridge: %s", exc)

    # --- inbound ------------------------------------------------------------------------------
    def _on_payload(self, payload: bytes | None, arrival: float) -> None:
        n = samples_per_frame(self.rate)
        if payload is None:
            samples = np.zeros(n, dtype=np.int16)  # lost packet: silence keeps the timeline
        else:
            samples = self.codec.decode(payload)
        if self._in_t0 is None:
            self._in_t0 = arrival
        # Media-clock timestamp, corrected forward if the clock fell behind arrivals.
        ts = self._in_t0 + self._in_count * FRAME_S
        if arrival - ts > 0.25:
            self._in_t0 += arrival - ts
            ts = arrival
        self._in_count += max(1, len(samples) // n)
        frame = AudioFrame(samples, self.rate, ts)
        self.heard.append(frame)
        self._check_barge_in(frame, arrival)
        was_in_speech = self._detector.in_speech
        events = self._detector.push(frame)
        if was_in_speech and self._utterance is not None:
            self._utterance.frame(frame)
        elif self._detector.in_speech:
            # A new utterance: the frames that started it, after a little of the audio before (the
            # word's onset).
            u = self._utterance = Utterance(self._detector.utterance_frames[0].timestamp)
            for f in (*self._detector.lead_in, *self._detector.utterance_frames):
                u.frame(f)
            if self.on_utterance is not None:
                self.on_utterance(u)
        self._dispatch(events)

    def _dispatch(self, events: list[TurnEvent]) -> None:
        for event in events:
            u = self._utterance
            if isinstance(event, Paused):
                if u is not None:
                    u.pause(event)
                continue
            self.trace.mark(type(event).__name__, event.at if isinstance(event, SpeechStarted) else None)
            if u is None or isinstance(event, SpeechStarted):
                continue
            self._utterance = None
            if isinstance(event, UtteranceEnded):
                u.finish(event)
                self.turns.put(u)
            else:
                u.discard()

    def end_turn(self, paused: Paused) -> bool:
        """The caller is done: end the utterance of `paused` now, in its pause, instead of waiting for
        the hangover. False when they spoke again since (or it already ended)."""
        event = self._detector.end_now(paused.started_at, time.monotonic())
        if event is None:
            return False
        self._dispatch([event])
        return True

    def _check_barge_in(self, frame: AudioFrame, now: float) -> None:
        if not self._speaking or not self._interruptible:
            return
        if self._barge_in.heard(frame.rms(), self._detector.is_voiced(frame), now):
            self.trace.mark("barge_in", now)
            log.info("barge-in: caller spoke over the agent")
            self._barged_in = True
            self.stop_playback()

    @property
    def in_speech(self) -> bool:
        """The caller is in the middle of an utterance (started, not yet ended)."""
        return self._detector.in_speech

    # --- outbound -----------------------------------------------------------------------------
    @property
    def speaking(self) -> bool:
        return self._speaking

    def stop_playback(self) -> None:
        """Drop everything queued; the sender sends silence from its next tick (<= 20 ms)."""
        self._out.clear()
        self._room.set()
        if self._speaking:
            self._speaking = False
            self._barge_in.speaking(None)
            self.trace.mark("playback_stopped")
        self._played.set()

    async def play(self, frames: Iterable[AudioFrame] | AsyncIterator[AudioFrame], *,
                   interruptible: bool = True) -> bool:
        """Play frames (at this media's rate) to the caller; True if played to the end, False if the
        caller barged in or `stop_playback()` was called. A generator that is not a sequence is read
        as it plays (at most PLAY_AHEAD_FRAMES ahead), so it may be endless (a ringback tone)."""
        self._barged_in = False
        self._played.clear()
        self._speaking = True
        self._interruptible = interruptible
        self._barge_in.speaking(time.monotonic() if interruptible else None)
        self._first_frame_pending = True
        self._input_open = True
        try:
            if isinstance(frames, AsyncIterator):  # speech being synthesised: finite, queued as it comes
                async for frame in frames:
                    if self._played.is_set():
                        break
                    self._out.append(frame)
            elif isinstance(frames, Sequence):
                self._out.extend(frames)  # a prompt already in memory: queued whole, as measured in the tests
            else:
                for frame in frames:  # a generator, possibly endless (ringback)
                    if not await self._queue_frame(frame):
                        break
        finally:
            self._input_open = False
        if not self._out and self._speaking:
            self._finish_playback()
        await self._played.wait()
        return not self._barged_in

    async def _queue_frame(self, frame: AudioFrame) -> bool:
        """Queue one frame, waiting while the queue is full; False once the playback was stopped."""
        while len(self._out) >= PLAY_AHEAD_FRAMES and not self._played.is_set():
            self._room.clear()
            await self._room.wait()  # the sender sets it as it takes frames; stop_playback too
        if self._played.is_set():
            return False
        self._out.append(frame)
        return True

    def _finish_playback(self) -> None:
        self._speaking = False
        self._barge_in.speaking(None)
        self.trace.mark("playback_done")
        self._played.set()

    async def _send_loop(self) -> None:
        assert self._socket is not None
        n = samples_per_frame(self.rate)
        silence = np.zeros(n, dtype=np.int16)
        lead = min(max(self.settings.lead_frames, 0), MAX_LEAD_FRAMES) * FRAME_S
        next_due = time.monotonic()
        while True:
            now = time.monotonic()
            self.send_late_max_s = max(self.send_late_max_s, now - next_due)
            if now - next_due > SENDER_RESET_S:
                next_due = now  # stalled: skip the missed slots rather than burst them
            while next_due <= now + lead:
                if self._out:
                    frame = self._out.popleft()
                    self._room.set()
                    samples = frame.samples
                    self.last_speech_sent_at = time.monotonic()
                    self._barge_in.sent(frame.rms())
                    if self._first_frame_pending:
                        self._first_frame_pending = False
                        self.trace.mark("reply_first_frame")
                else:
                    samples = silence
                    self._barge_in.sent(0.0)
                self._socket.send(self.codec.encode(samples), n)
                if self._speaking and not self._out and not self._input_open:
                    self._finish_playback()
                next_due += FRAME_S
            await asyncio.sleep(max(0.0, next_due - lead - time.monotonic()))

