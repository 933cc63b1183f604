"""What the receptionist says, as audio: every fixed sentence of every dialplan rendered at start-up
(cached on disk by text and voice), the rest synthesised sentence by sentence as it is spoken.
What the first seconds of any call need (the greeting, its question, the voice-message prompts,
the acknowledgements) is rendered before the service takes calls; the rest in a background thread
at a lower priority, so that a cold cache does not keep calls waiting (a sentence not yet rendered
is synthesised when said, as any other).

A reply is cut into sentences; a sentence the book holds plays at once, the others stream from
the TTS engine (the first sentence plays while the next is synthesised).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Final

import numpy as np

from agent.audio.frames import AudioFrame, samples_per_frame, split_frames
from agent.background import Background
from agent.dialogue import phrases
from agent.dialogue.dialplan import Dialplan
from agent.dialogue.phrases import FIELD
from agent.tts.base import Synthesizer, render, sentences, speech_chunks, stream_frames
from agent.tts.espeak_engine import EspeakEngine
from agent.tts.prompt_files import is_rendered, load_frames, render_beep, render_prompt, to_rate

log = logging.getLogger(__name__)

BACKGROUND_NICE: Final = 10
"""Priority of the background rendering (as the recognition threads): calls first."""
SENTENCE_GAP_MS: Final = 120
"""Silence between two sentences of one reply, ms."""
RINGBACK_ON_S: Final = 1.5
RINGBACK_OFF_S: Final = 3.5
RINGBACK_HZ: Final = 440.0
"""The French ringback tone (440 Hz, 1.5 s on, 3.5 s off) the caller hears while the artisan rings."""


class PhraseBook:
    """Rendered sentences (frames at the call's rate), shared by every call; one per process."""

    def __init__(self, engine: Synthesizer, cache_dir: Path, rate: int) -> None:
        self.engine = engine
        self.cache_dir = cache_dir
        self.rate = rate
        self._frames: dict[str, list[AudioFrame]] = {}
        self.beep = load_frames(render_beep(cache_dir), rate)
        self._gap = [AudioFrame.silence(rate)] * (SENTENCE_GAP_MS // 20)
        self._s_per_char: float | None = None
        """The voice's measured pace to first audio, seconds per character of the first piece (an
        average of the last syntheses); None until it has synthesised something."""

    def prepare(self, texts: Iterable[str], stopping: threading.Event | None = None) -> int:
        """Render (or load from the disk cache) every sentence of `texts` but a template's sentences
        with a field ("{slot}"); blocking, for start-up. Ends early once `stopping` is set."""
        started = time.monotonic()
        count = 0
        for text in texts:
            for sentence in sentences(text):
                if stopping is not None and stopping.is_set():
                    return count
                if sentence not in self._frames and not FIELD.search(sentence):
                    began = time.monotonic()
                    prompt = render_prompt(sentence, self.cache_dir, engine=self.engine)
                    if not prompt.cached:
                        self._paced(time.monotonic() - began, len(sentence))
                    self._frames[sentence] = load_frames(prompt, self.rate)
                    count += 1
        log.info("phrases ready: %d sentence(s) with %s in %.1f s", count, self.engine.name,
                 time.monotonic() - started)
        return count

    def first_audio_s(self, text: str) -> float | None:
        """How long `text` will take to its first audio, predicted: 0 when its first sentence is
        held, else its first piece at the voice's measured pace; None while the pace is unknown."""
        said = sentences(text)
        if not said or said[0] in self._frames:
            return 0.0
        if self._s_per_char is None:
            return None
        return len(speech_chunks(said[0])[0][0]) * self._s_per_char

    def _paced(self, seconds: float, chars: int) -> None:
        if chars:
            pace = seconds / chars
            self._s_per_char = pace if self._s_per_char is None else (self._s_per_char + pace) / 2

    def prepare_dialplan(self, plan: Dialplan) -> int:
        return self.prepare(phrases.fixed_texts(plan))

    def render_fallback(self, prompts_dir: Path, *, quick: bool = False) -> bool:
        """The prompts the dialplan plays by itself when the controller is down (asterisk-conf's
        voice message). `quick` (at start): if this voice has not rendered it yet (a first start),
        espeak-ng renders it now (tens of ms instead of the voice's 0.5 s before calls are taken), and
        True says the voice should render it again later."""
        render_beep(prompts_dir)
        if quick and not is_rendered(phrases.FALLBACK, prompts_dir, name="fallback", engine=self.engine):
            render_prompt(phrases.FALLBACK, prompts_dir, name="fallback", engine=EspeakEngine())
            return True
        render_prompt(phrases.FALLBACK, prompts_dir, name="fallback", engine=self.engine)
        return False

    def prepare_in_background(self, texts: list[str], background: Background,
                               then: Callable[[], object] | None = None) -> threading.Thread:
        """`prepare(texts)` in a `background` job at a lower priority (nice 10): what a call may say
        later than its first seconds; then `then()`, in the same thread. Returns the thread."""

        def run() -> None:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
            except (OSError, AttributeError):
                pass
            try:
                self.prepare(texts, background.stopping)
                if then is not None and not background.stopping.is_set():
                    then()
            except Exception:  # a sentence that cannot be rendered now is synthesised when said
                log.exception("rendering the phrases in the background failed")

        return background.start("phrases", run)

    def rendered_speech(self, texts: list[str]) -> list[np.ndarray]:
        """The samples of each sentence of `texts` already in the book (for warming the recogniser)."""
        said = [self._frames.get(s) for t in texts for s in sentences(t)]
        return [np.concatenate([f.samples for f in frames]) for frames in said if frames]

    def fixed(self, text: str) -> list[AudioFrame]:
        """A text whose sentences are all in the book, as frames (KeyError otherwise: a bug)."""
        out: list[AudioFrame] = []
        for i, sentence in enumerate(sentences(text)):
            out += (self._gap if i else []) + self._frames[sentence]
        return out

    async def speak(self, text: str, then: list[AudioFrame] | None = None) -> AsyncIterator[AudioFrame]:
        """Frames of `text`: held sentences at once, the others synthesised as they are needed; then
        the frames `then` (a beep). With `then`, a synthesis that fails ends the text early instead
        of raising: what follows (the beep of a voice message) is what matters."""
        try:
            async for frame in self._speak(text):
                yield frame
        except Exception:
            if then is None:
                raise
            log.exception("a prompt could not be synthesised: skipped to what follows")
        for frame in then or ():
            yield frame

    async def _speak(self, text: str) -> AsyncIterator[AudioFrame]:
        pending: list[str] = []
        first = True
        for sentence in sentences(text):
            held = self._frames.get(sentence)
            if held is None:
                pending.append(sentence)
                continue
            if pending:
                async for frame in self._synth(pending, first):
                    yield frame
                pending, first = [], False
            if not first:
                for frame in self._gap:
                    yield frame
            first = False
            for frame in held:
                yield frame
        if pending:
            async for frame in self._synth(pending, first):
                yield frame

    async def speak_whole(self, text: str) -> AsyncIterator[AudioFrame]:
        """The naive baseline (`call.pipeline: naive`): the whole reply synthesised before its first
        frame, nothing taken from the book."""
        samples, rate = await asyncio.to_thread(render, self.engine, text)
        for frame in split_frames(to_rate(samples, rate, self.rate), self.rate):
            yield frame

    async def _synth(self, texts: list[str], first: bool) -> AsyncIterator[AudioFrame]:
        if not first:
            for frame in self._gap:
                yield frame
        text, began, timed = " ".join(texts), time.monotonic(), False
        async for frame in stream_frames(self.engine, text, self.rate):
            if not timed:
                self._paced(time.monotonic() - began, len(speech_chunks(text)[0][0]))
                timed = True
            yield frame


def ringback(rate: int) -> Iterable[AudioFrame]:
    """The ringback tone, for ever (the player paces it; stop it with stop_playback)."""
    n = samples_per_frame(rate)
    on = int(RINGBACK_ON_S * 50)
    period = on + int(RINGBACK_OFF_S * 50)
    t = np.arange(n * on) / rate
    tone = (0.25 * 32767 * np.sin(2 * np.pi * RINGBACK_HZ * t)).astype(np.int16)
    frames = [AudioFrame(tone[i * n:(i + 1) * n], rate) for i in range(on)]
    silence = AudioFrame.silence(rate)
    k = 0
    while True:
        yield frames[k] if k < on else silence
        k = (k + 1) % period
