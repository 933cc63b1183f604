"""Turn-taking on the caller's audio: start of speech, end of utterance, barge-in.

Silero VAD (the product's default, `media.vad.engine: auto`) or webrtcvad decides voiced / unvoiced
for each 20 ms frame; an energy floor keeps steady line noise out; a start needs several voiced
frames in a short window, so a click (one or two frames) never starts a turn; the end of an
utterance is a run of unvoiced frames as long as the hangover (or a decision in a pause, `Paused`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

import numpy as np
import webrtcvad

from agent.audio.frames import FRAME_MS, AudioFrame
from agent.audio.silero import GOING_ON, THRESHOLD

DEFAULT_AGGRESSIVENESS: Final = 2
DEFAULT_START_FRAMES: Final = 3
"""Voiced frames needed within the start window to declare speech (3 x 20 ms)."""
DEFAULT_START_WINDOW: Final = 5
DEFAULT_RESUME_FRAMES: Final = 3
"""After a pause inside an utterance, voiced frames in a row needed to count as speech again: a click
or a door slam during the pause must not stretch the utterance (3 x 20 ms)."""
DEFAULT_HANGOVER_MS: Final = 700
"""Unvoiced time after speech that ends the utterance whatever else is known, ms."""
DEFAULT_PAUSE_MS: Final = 200
"""Unvoiced time after speech at which the end of the turn is decided (`Paused`): the caller's words
and the sound of the utterance may say they are done well before the hangover, ms. 0: no decision,
the hangover alone."""
DEFAULT_MIN_UTTERANCE_MS: Final = 160
"""Shorter 'utterances' (coughs, clicks that got through) are discarded, ms."""
DEFAULT_MAX_UTTERANCE_MS: Final = 30000
"""A caller who speaks this long without the hangover's pause gets their utterance cut here and
answered: a turn never waits for ever, and the recogniser never gets minutes of audio at once."""
DEFAULT_PRE_ROLL_MS: Final = 200
"""Audio kept from before the first voiced frame and given to the recogniser with the utterance: a
word's onset (a plosive, a soft "h") is often under the VAD's threshold, and a recogniser given the
word without it hears another word (measured on the Vosk stand-in: the first word was wrong in 3 of
20 frame alignments without it, 0 of 40 with 100-300 ms), ms."""
SILERO_ONSET_MS: Final = 100
"""At most this much of loud audio before Silero's first "speech" is the word's onset, ms."""
SILERO_HOLD_MS: Final = 240
"""In a pause, frames louder than the line's noise that Silero has not (yet) called speech are neither
speech nor silence for up to this long. Counted as silence, its lag on a word's onset (200 ms on the
nasal "m" of "mon", a few seconds into a call) made a 500 ms pause last past the 700 ms hangover:
"Bonjour, | euh, | mon évier..." was cut before "mon". Louder for longer, they were not speech:
counted as silence then, the end comes that much later, once."""
HOLD_OVER_FLOOR: Final = 2.0
NOISE_WINDOW: Final = 100
"""A frame held is at least HOLD_OVER_FLOOR times the line's noise floor (the 20th percentile of the
last NOISE_WINDOW frames' RMS, 2 s): in steady street or car noise nothing is held, and the end of
a turn is not delayed."""
DEFAULT_MIN_RMS: Final = 200.0
"""Frames quieter than this (int16 RMS; about -44 dBFS) are never speech: line hiss, comfort noise."""


class VadEngine(StrEnum):
    """What decides voiced / unvoiced for each frame."""

    WEBRTC = "webrtc"
    SILERO = "silero"
    """Silero VAD (audio/silero.py): better in street, car and wind noise (scripts/compare_vad.py)."""


@dataclass(frozen=True)
class VadSettings:
    aggressiveness: int = DEFAULT_AGGRESSIVENESS
    start_frames: int = DEFAULT_START_FRAMES
    start_window: int = DEFAULT_START_WINDOW
    resume_frames: int = DEFAULT_RESUME_FRAMES
    hangover_ms: int = DEFAULT_HANGOVER_MS
    min_utterance_ms: int = DEFAULT_MIN_UTTERANCE_MS
    min_rms: float = DEFAULT_MIN_RMS
    pre_roll_ms: int = DEFAULT_PRE_ROLL_MS
    max_utterance_ms: int = DEFAULT_MAX_UTTERANCE_MS
    pause_ms: int = DEFAULT_PAUSE_MS
    turn_model: bool = False
    engine: VadEngine = VadEngine.WEBRTC
    silero_model: Path | None = None
    """The Silero model file (models/smart-turn/silero_vad.onnx), with engine SILERO."""
    """Whether the sound of the utterance (Smart Turn) may end a turn in a pause too, not only the
    words. Off: on the voices available here it took most mid-sentence commas for ends (README
    "Performance"); to be measured on real callers' voices before it is turned on."""


@dataclass(frozen=True)
class SpeechStarted:
    at: float
    """Arrival time (monotonic s) of the first voiced frame of the turn."""


@dataclass(frozen=True)
class UtteranceEnded:
    started_at: float
    ended_at: float
    """Arrival time of the end of the last voiced frame, monotonic s."""
    decided_at: float
    """When the hangover ran out and the decision was made, monotonic s."""
    frames: tuple[AudioFrame, ...]
    early: bool = False
    """Ended in a pause by a decision (`TurnDetector.end_now`), before the hangover: the caller may
    yet go on, and what they add belongs to this turn."""


@dataclass(frozen=True)
class Paused:
    """The caller has been silent `pause_ms` in the utterance started at `started_at`: whether they are
    done is decided now (`TurnDetector.end_now`), else the hangover ends it, or they go on."""

    started_at: float
    at: float
    """Arrival time of the end of the last voiced frame, monotonic s."""
    frames: tuple[AudioFrame, ...]
    """The utterance so far, without the pause."""


@dataclass(frozen=True)
class SpeechDiscarded:
    """A start that turned out too short to be an utterance (click, cough)."""

    started_at: float


TurnEvent = SpeechStarted | UtteranceEnded | SpeechDiscarded | Paused


class TurnDetector:
    """Feed every caller frame in order; get turn events back. One per call."""

    def __init__(self, settings: VadSettings, rate: int) -> None:
        if rate not in (8000, 16000, 32000, 48000):
            raise ValueError(f"webrtcvad does not take {rate} Hz")
        self.settings = settings
        self.rate = rate
        self._vad = webrtcvad.Vad(settings.aggressiveness)
        self._silero = None
        if settings.engine is VadEngine.SILERO:
            from agent.audio.silero import SileroVoice

            if settings.silero_model is None:
                raise ValueError("the Silero VAD needs its model file (silero_model)")
            self._silero = SileroVoice(settings.silero_model, rate)
        self._last: tuple[AudioFrame | None, bool] = (None, False)
        self._rms = 0.0
        """The RMS of the last frame judged (is_voiced)."""
        self._window: deque[tuple[bool, AudioFrame]] = deque(maxlen=settings.start_window)
        self._before: deque[AudioFrame] = deque(maxlen=settings.pre_roll_ms // FRAME_MS + settings.start_window)
        self._lead_in: list[AudioFrame] = []
        self._in_speech = False
        self._frames: list[AudioFrame] = []
        self._started_at = 0.0
        self._last_voiced_end = 0.0
        self._silent_ms = 0
        self._paused = False
        self._run = 0
        self._held = 0
        self._loud_ms = 0
        self._levels: deque[float] = deque(maxlen=NOISE_WINDOW)

    def is_voiced(self, frame: AudioFrame) -> bool:
        """Asked once or twice a frame (barge-in, then the turn): answered once (Silero's state must
        see every frame once, in order)."""
        if frame is self._last[0]:
            return self._last[1]
        rms = self._rms = frame.rms()
        loud = rms >= self.settings.min_rms
        self._levels.append(rms)
        if self._silero is not None:
            voiced = self._silero.voiced(frame.samples, GOING_ON if self._in_speech else THRESHOLD,
                                         quiet=not self._in_speech) and loud
        else:
            voiced = loud and bool(self._vad.is_speech(frame.pcm(), frame.rate))
        self._last = (frame, voiced)
        return voiced

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def utterance_frames(self) -> tuple[AudioFrame, ...]:
        """The frames of the utterance in progress so far (from its first voiced frame)."""
        return tuple(self._frames)

    @property
    def lead_in(self) -> tuple[AudioFrame, ...]:
        """Up to pre_roll_ms of the audio just before the utterance in progress (for the recogniser)."""
        return tuple(self._lead_in)

    def push(self, frame: AudioFrame) -> list[TurnEvent]:
        voiced = self.is_voiced(frame)
        events: list[TurnEvent] = []
        if not self._in_speech:
            self._window.append((voiced, frame))
            self._before.append(frame)
            if voiced and sum(v for v, _ in self._window) >= self.settings.start_frames:
                first = next(i for i, (v, _) in enumerate(self._window) if v)
                self._frames = [f for _, f in list(self._window)[first:]]
                before = list(self._before)[: len(self._before) - len(self._frames)]
                onset = self._onset(before)
                if onset:
                    self._frames[:0] = before[len(before) - onset:]
                    before = before[:len(before) - onset]
                self._lead_in = before[len(before) - self.settings.pre_roll_ms // FRAME_MS:] \
                    if self.settings.pre_roll_ms >= FRAME_MS else []
                self._before.clear()
                self._started_at = self._frames[0].timestamp
                self._last_voiced_end = frame.timestamp + frame.duration_s
                self._in_speech = True
                self._silent_ms = self._held = self._loud_ms = 0
                self._paused = False
                self._window.clear()
                events.append(SpeechStarted(self._started_at))
            return events
        self._frames.append(frame)
        if len(self._frames) * FRAME_MS >= self.settings.max_utterance_ms:
            # Cut: the caller is still speaking; what follows starts a new utterance.
            end = frame.timestamp + frame.duration_s
            events.append(UtteranceEnded(self._started_at, end, end, tuple(self._frames)))
            self._frames = []
            self._in_speech = False
            self._paused = False
            self._window.clear()
            return events
        self._run = self._run + 1 if voiced else 0
        self._loud_ms = self._loud_ms + FRAME_MS if self._silero is not None and self._above_noise() else 0
        if voiced and (self._silent_ms == 0 or self._run >= self.settings.resume_frames):
            self._silent_ms = 0
            self._held = 0
            self._paused = False
            self._last_voiced_end = frame.timestamp + frame.duration_s
            return events
        if self._silero is not None and self._silent_ms and 0 < self._loud_ms <= SILERO_HOLD_MS:
            self._held += FRAME_MS  # perhaps a word Silero has not called speech yet
            return events
        self._silent_ms += FRAME_MS + self._held
        self._held = 0
        if self._silent_ms >= self.settings.hangover_ms:
            events.append(self._end(frame.timestamp + frame.duration_s))
        elif (not self._paused and 0 < self.settings.pause_ms <= self._silent_ms
              and self._speech_ms() >= self.settings.min_utterance_ms):
            self._paused = True  # (once a pause)
            events.append(Paused(self._started_at, self._last_voiced_end,
                                 tuple(self._frames[:len(self._frames) - self._silent_ms // FRAME_MS])))
        return events

    def _above_noise(self) -> bool:
        """The frame just judged is loud and at least HOLD_OVER_FLOOR times the line's noise floor."""
        rms = self._rms
        if rms < self.settings.min_rms:
            return False
        return rms >= HOLD_OVER_FLOOR * float(np.percentile(self._levels, 20)) if self._levels else True

    def _onset(self, before: list[AudioFrame]) -> int:
        """How many of the loud frames just before the first voiced one belong to the utterance:
        Silero reads 32 ms chunks through a recurrent state and says "speech" 40-80 ms after the
        sound begins, so the loud frames it has not yet called speech are the word's onset (up to
        SILERO_ONSET_MS). Without them a short "Jean" or "oui" measured 140 ms instead of 220 ms on a
        live call: under the minimum length, so no pause was decided after it. webrtcvad judges each
        frame alone: nothing to add."""
        if self._silero is None:
            return 0
        count = 0
        for frame in reversed(before[max(0, len(before) - SILERO_ONSET_MS // FRAME_MS):]):
            if frame.rms() < self.settings.min_rms:
                break
            count += 1
        return count

    def end_now(self, started_at: float, at: float) -> UtteranceEnded | None:
        """End the utterance started at `started_at` now, at monotonic `at` (its end was decided in a
        pause); None if the caller spoke again since (even a frame), or it has already ended."""
        if not self._in_speech or self._started_at != started_at or not self._paused or self._run or self._held:
            return None
        event = self._end(at, early=True)
        return event if isinstance(event, UtteranceEnded) else None

    def _speech_ms(self) -> float:
        return (self._last_voiced_end - self._started_at) * 1000

    def _end(self, decided_at: float, early: bool = False) -> UtteranceEnded | SpeechDiscarded:
        self._in_speech = False
        self._paused = False
        silent = self._silent_ms // FRAME_MS
        event: UtteranceEnded | SpeechDiscarded
        if self._speech_ms() < self.settings.min_utterance_ms:
            event = SpeechDiscarded(self._started_at)
        else:
            # Keep the trailing silence out of the utterance, except one frame.
            event = UtteranceEnded(self._started_at, self._last_voiced_end, decided_at,
                                   tuple(self._frames[:len(self._frames) - silent + 1]), early)
        # The silence that ended it is what comes just before the next utterance: its pre-roll.
        self._before.extend(self._frames[len(self._frames) - silent:])
        self._frames = []
        return event
