"""Vosk (Kaldi) speech recognition: one model per process, one KaldiRecognizer per call."""

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
from typing import Any, TypeVar

import numpy as np
import soxr

from agent import engine_hooks
from agent.asr.base import AsrError, AsrSettings, Transcript
from agent.audio.frames import AudioFrame

log = logging.getLogger(__name__)

UNKNOWN_WORD = "[unk]"
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
        self.pool = self._pool(AsrSettings())
        log.info("ASR model %s (%s, %d Hz) loaded in %.2f s", self.name, language, self.rate,
                 self.load_seconds)

    @staticmethod
    def _pool(settings: AsrSettings) -> ThreadPoolExecutor:
        # One recogniser step per core at a time, at a lower priority: more threads than cores only
        # take CPU time from the event loop.
        return ThreadPoolExecutor(max_workers=settings.threads or os.cpu_count() or 2, thread_name_prefix="asr",
                                  initializer=_lower_priority, initargs=(settings.nice,))

    def configure(self, settings: AsrSettings) -> None:
        """Use the service config's recognition threads (before the first call)."""
        old, self.pool = self.pool, self._pool(settings)
        old.shutdown(wait=False)

    def session(self, rate: int, phrases: list[str] | None = None) -> VoskSession:
        return VoskSession(self, rate, phrases)

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
        import vosk

        self.engine = engine
        self.rate = rate
        args: list[object] = [engine._model, float(engine.rate)]
        if phrases:
            # ensure_ascii=False: escaped non-ASCII words are silently dropped by Vosk.
            args.append(json.dumps([*phrases, UNKNOWN_WORD], ensure_ascii=False))
        self._rec = vosk.KaldiRecognizer(*args)
        self._rec.SetWords(True)
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

    async def feed(self, frame: AudioFrame) -> Transcript | None:
        if frame.rate != self.rate:
            raise AsrError(f"frame at {frame.rate} Hz fed to a {self.rate} Hz session")
        async with self._lock:
            return await self.engine.run(self._accept, self._pcm(frame.samples))

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
                return _joined([*self._segments, _final(json.loads(self._rec.FinalResult()))])

            self._last_partial = ""
            try:
                return await self.engine.run(final)
            finally:
                self._segments = []

    async def discard(self) -> None:
        async with self._lock:
            self._last_partial = ""
            self._segments = []
            if self._resampler is not None:
                self._resampler.clear()
            await self.engine.run(self._rec.Reset)


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
