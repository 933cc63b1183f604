"""Vosk (Kaldi) speech recognition: one model per process, one KaldiRecognizer per call at a time.

Recognisers are kept between calls. A small Vosk model decodes through a lookahead composition of
its graphs (HCLr.fst with Gr.fst) that each recogniser builds lazily, arc by arc, as audio explores
it: a new recogniser decodes 3-5 times slower than one that has already heard a few utterances
(measured with the packaged model: the first 3.4 s utterance of a call 1.5-1.8 s of CPU instead of
0.2-0.5 s, its final result 120-180 ms instead of 30-60 ms), and takes ~100 ms to make. What a
recogniser keeps is that cache only: Vosk rebuilds its decoder and features after every final
result, so nothing of a caller's speech reaches the next call."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np
import soxr

from agent import engine_hooks
from agent.asr.base import AsrError, AsrSettings, Transcript
from agent.audio.frames import AudioFrame

log = logging.getLogger(__name__)

UNKNOWN_WORD = "[unk]"
WARM_SPEECH_S: Final = 20.0
"""Speech a recogniser is warmed on at start, at most: 2-3 s of one core each (packaged model)."""
T = TypeVar("T")


def _lower_priority(nice: int) -> None:
    if not nice:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (OSError, AttributeError):  # not Linux, or not allowed: same priority as the rest
        pass


def model_rate(model_dir: Path) -> int:
    """The sample rate the model was trained on (conf/mfcc.conf), 16000 if it does not say."""
    conf = model_dir / "conf" / "mfcc.conf"
    if conf.exists():
        m = re.search(r"--sample-frequency=(\d+)", conf.read_text())
        if m:
            return int(m.group(1))
    return 16000


class VoskEngine:
    def __init__(self, model_dir: Path, language: str, name: str | None = None) -> None:
        import vosk

        if not (model_dir / "am").is_dir() and not (model_dir / "final.mdl").exists():
            raise AsrError(f"{model_dir} is not a Vosk model directory (no am/)")
        vosk.SetLogLevel(-1)
        started = time.monotonic()
        try:
            self._model = vosk.Model(str(model_dir))
        except Exception as exc:  # vosk raises a bare Exception on a bad model
            raise AsrError(f"cannot load the Vosk model {model_dir}: {exc}") from exc
        self.load_seconds = time.monotonic() - started
        self.model_dir = model_dir
        self.language = language
        self.rate = model_rate(model_dir)
        self.name = f"vosk:{name or model_dir.name}"
        self.settings = AsrSettings()
        self.pool = self._pool(self.settings)
        self._idle: list[Any] = []
        """Recognisers of ended calls (no phrase list), warm, each used by one session at a time."""
        self._idle_lock = threading.Lock()
        self.recognisers_made = 0
        log.info("ASR model %s (%s, %d Hz) loaded in %.2f s", self.name, language, self.rate,
                 self.load_seconds)

    @staticmethod
    def _pool(settings: AsrSettings) -> ThreadPoolExecutor:
        # One recogniser step per core at a time, at a lower priority: more threads than cores only
        # take CPU time from the event loop.
        return ThreadPoolExecutor(max_workers=settings.threads or os.cpu_count() or 2, thread_name_prefix="asr",
                                  initializer=_lower_priority, initargs=(settings.nice,))

    def configure(self, settings: AsrSettings) -> None:
        """Use the service config's recognition threads and recogniser limits (before the first call)."""
        old, self.pool = self.pool, self._pool(settings)
        self.settings = settings
        old.shutdown(wait=False)
        with self._idle_lock:
            del self._idle[settings.keep:]

    def session(self, rate: int, phrases: list[str] | None = None) -> VoskSession:
        return VoskSession(self, rate, phrases)

    def recogniser(self, phrases: list[str] | None) -> Any:
        """A recogniser for one session: a kept one if there is one (no phrase list), else a new one."""
        if not phrases:
            with self._idle_lock:
                if self._idle:
                    return self._idle.pop()
        return self._new(phrases)

    def _new(self, phrases: list[str] | None) -> Any:
        import vosk

        args: list[object] = [self._model, float(self.rate)]
        if phrases:
            # ensure_ascii=False: escaped non-ASCII words are silently dropped by Vosk.
            args.append(json.dumps([*phrases, UNKNOWN_WORD], ensure_ascii=False))
        rec = vosk.KaldiRecognizer(*args)
        rec.SetWords(True)
        self.recognisers_made += 1
        return rec

    def keep(self, rec: Any) -> None:
        """Take back a (phrase-less) recogniser whose session ended on a final result, for a next
        call. After FinalResult Vosk has dropped the decoder and features; the next audio makes new
        ones (a Reset mid-utterance would keep the features, and the speaker adaptation, instead)."""
        with self._idle_lock:
            if len(self._idle) < self.settings.keep:
                self._idle.append(rec)

    def warm_up(self, speech: list[np.ndarray], rate: int, stopping: threading.Event | None = None) -> int:
        """Make `settings.warm` recognisers, run each over `speech` (utterances at `rate` Hz: the
        receptionist's own prompts) and keep them for the first calls. Blocking: run in a background
        thread, at the recognition threads' priority; ends after the utterance in progress once
        `stopping` is set. Returns how many were kept."""
        _lower_priority(self.settings.nice)
        started = time.monotonic()
        kept_s = 0.0
        taken = []
        for x in speech:
            if kept_s >= WARM_SPEECH_S:
                break
            taken.append(x)
            kept_s += len(x) / rate
        pcms = [(soxr.resample(x, rate, self.rate) if rate != self.rate else x).astype("<i2").tobytes()
                for x in taken]
        kept = min(self.settings.warm, self.settings.keep)
        for made in range(kept):
            rec = self._new(None)
            for pcm in pcms:
                if stopping is not None and stopping.is_set():
                    return made
                rec.AcceptWaveform(pcm)
                rec.FinalResult()
            self.keep(rec)
        log.info("recognisers warmed for the first calls: %d, on %.0f s of the prompts, in %.1f s", kept, kept_s,
                 time.monotonic() - started)
        return kept

    @property
    def idle_recognisers(self) -> int:
        with self._idle_lock:
            return len(self._idle)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on a recognition thread; whatever Kaldi raises (bare exceptions) comes back as
        an AsrError, so that the call hears a fallback."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
        except AsrError:
            raise
        except Exception as exc:
            raise AsrError(f"{self.name}: {type(exc).__name__}: {exc}") from exc


class VoskSession:
    """Feeds 20 ms frames; recognition runs in a worker thread, never on the event loop."""

    def __init__(self, engine: VoskEngine, rate: int, phrases: list[str] | None) -> None:
        self.engine = engine
        self.rate = rate
        self._pooled = not phrases
        self._rec = engine.recogniser(phrases)
        self._busy = threading.Lock()
        """Held by the recognition thread working on `_rec`: a step whose caller was cancelled (the
        call ended) still runs to its end before the recogniser is kept."""
        self._close_asked = False
        self._closed = False
        self._clean = True
        """False once a step failed or was cut off: such a recogniser is not kept."""
        self._mid_utterance = False
        """Audio fed since the last final result: such a recogniser is not kept either."""
        # One resampler per call, at the edge, when the model wants another rate than the line.
        self._resampler = soxr.ResampleStream(rate, engine.rate, 1, dtype="int16") if rate != engine.rate else None
        self._last_partial = ""
        self._segments: list[Transcript] = []
        """What Vosk finalised by itself within the utterance (its own endpointing at a pause): kept,
        and put before the rest when the utterance ends."""
        self._lock = asyncio.Lock()

    def _pcm(self, samples: np.ndarray, last: bool = False) -> bytes:
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        return samples.astype("<i2").tobytes()

    def _accept(self, pcm: bytes) -> Transcript | None:
        self._mid_utterance = True
        if self._rec.AcceptWaveform(pcm):
            result = json.loads(self._rec.Result())
            self._last_partial = ""
            segment = _final(result)
            if segment.text:
                self._segments.append(segment)
            return segment
        partial = json.loads(self._rec.PartialResult()).get("partial", "")
        if partial != self._last_partial:
            self._last_partial = partial
            return Transcript(partial, final=False)
        return None

    def _locked(self, fn: Callable[[], T]) -> Callable[[], T]:
        def step() -> T:
            try:
                with self._busy:
                    if self._closed:
                        raise AsrError("the recogniser's session has ended")
                    try:
                        return fn()
                    except BaseException:
                        self._clean = False
                        raise
            finally:
                self._release_if_asked()  # the call ended while this step ran
        return step

    def _release_if_asked(self) -> None:
        """Once the session is closed and no step runs, keep the recogniser (or not). Whoever finds
        the lock taken leaves it to the holder, who tries again after letting go of it: a step that
        hangs never holds up a recognition thread, nor the event loop, for the release."""
        if not self._close_asked or not self._busy.acquire(blocking=False):
            return
        try:
            if not self._closed:
                self._closed = True
                if self._pooled and self._clean and not self._mid_utterance:
                    self.engine.keep(self._rec)
        finally:
            self._busy.release()

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await self.engine.run(self._locked(fn))
        except asyncio.CancelledError:
            self._clean = False  # cut off (a hang the call timed out on, or the call's end mid-step)
            raise

    async def feed(self, frame: AudioFrame) -> Transcript | None:
        if frame.rate != self.rate:
            raise AsrError(f"frame at {frame.rate} Hz fed to a {self.rate} Hz session")
        async with self._lock:
            pcm = self._pcm(frame.samples)
            return await self._run(lambda: self._accept(pcm))

    async def finish(self) -> Transcript:
        async with self._lock:
            tail = self._pcm(np.zeros(0, dtype=np.int16), last=True)
            if self._resampler is not None:
                # A stream given its last input takes no more: the next utterance starts a new one
                # (without this, every call's second utterance failed on a 16 kHz model).
                self._resampler.clear()

            def final() -> Transcript:
                engine_hooks.before_use("asr")  # the tests: a crash or a hang, in Kaldi's thread
                if tail and self._rec.AcceptWaveform(tail):
                    self._segments.append(_final(json.loads(self._rec.Result())))
                text = _joined([*self._segments, _final(json.loads(self._rec.FinalResult()))])
                self._mid_utterance = False
                return text

            self._last_partial = ""
            try:
                return await self._run(final)
            finally:
                self._segments = []

    async def discard(self) -> None:
        async with self._lock:
            self._last_partial = ""
            self._segments = []
            if self._resampler is not None:
                self._resampler.clear()
            await self._run(self._rec.Reset)

    def close(self) -> None:
        """The call is over: once no step runs, the recogniser is kept for a next call (unless a step
        failed, hung or was cut off mid-utterance, or it has a phrase list). Never blocks."""
        self._close_asked = True
        self._release_if_asked()


def _joined(parts: list[Transcript]) -> Transcript:
    """One utterance's text from the segments Vosk finalised along the way."""
    texts = [p.text for p in parts if p.text]
    confs = [p.confidence for p in parts if p.text and p.confidence is not None]
    return Transcript(" ".join(texts), final=True, confidence=min(confs) if confs else None)


def _final(result: dict[str, Any]) -> Transcript:
    words: list[Any] = result.get("result") or []
    text = " ".join(str(w["word"]) for w in words if isinstance(w, dict) and w.get("word") != UNKNOWN_WORD)
    if not words:
        text = str(result.get("text", "")).replace(UNKNOWN_WORD, "").strip()
    confs = [float(w["conf"]) for w in words if isinstance(w, dict) and "conf" in w]
    return Transcript(" ".join(text.split()), final=True,
                      confidence=sum(confs) / len(confs) if confs else None)
