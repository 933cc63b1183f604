"""Text-to-speech: engines behind one narrow interface, streamed sentence by sentence."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Final, Protocol

import numpy as np
import soxr

from agent.audio.frames import AudioFrame, samples_per_frame, split_frames, trim_lead
from agent.errors import StageError

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[.!?…;:])\s+")


class TtsError(StageError):
    stage = "tts"


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


CHUNK_MAX_CHARS: Final = 48
"""A streamed sentence longer than this is synthesised in pieces cut at its commas, each at most
this long where the commas allow: the first piece plays while the next is synthesised. Whole, a
recap sentence (90 characters: the caller's name, address and number) took the stand-in voice
1.0-1.7 s to its first audio on an idle core here, past the 2 s engine time limit on a loaded box."""
CLAUSE_GAP_MS: Final = 80
STREAM_SENTENCE_GAP_MS: Final = 120
"""Silence between two pieces of one sentence (a comma's pause) and between two sentences, ms."""
_CLAUSE_END = re.compile(r"(?<=,)\s+")


def speech_chunks(text: str) -> list[tuple[str, bool]]:
    """What a reply is synthesised in, in order: (piece, ends a sentence). Pieces never cut a clause."""
    out: list[tuple[str, bool]] = []
    for sentence in sentences(text):
        pieces: list[str] = []
        for clause in _CLAUSE_END.split(sentence) if len(sentence) > CHUNK_MAX_CHARS else [sentence]:
            if pieces and len(pieces[-1]) + 1 + len(clause) <= CHUNK_MAX_CHARS:
                pieces[-1] += " " + clause
            else:
                pieces.append(clause)
        out += [(piece, i == len(pieces) - 1) for i, piece in enumerate(pieces)]
    return out


class Synthesizer(Protocol):
    name: str
    """Which voice is running, for logs and health (e.g. "piper:fr_FR-siwis-medium")."""

    def synthesize_sentences(self, text: str) -> Iterator[tuple[np.ndarray, int]]:
        """Blocking: int16 samples and their rate, one item per sentence, as each is ready."""


async def stream_frames(engine: Synthesizer, text: str, rate: int) -> AsyncIterator[AudioFrame]:
    """Frames at `rate` as synthesis goes: the first piece (`speech_chunks`) plays while the rest is
    synthesised.
    Synthesis runs in a worker thread; resampling happens once, here, with one stream per reply."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[np.ndarray, int] | BaseException | None] = asyncio.Queue()
    cancelled = threading.Event()

    def produce() -> None:
        try:
            gap_ms = 0
            for piece, ends_sentence in speech_chunks(text):
                for samples, src_rate in engine.synthesize_sentences(piece):
                    if cancelled.is_set():
                        return
                    if gap_ms:
                        loop.call_soon_threadsafe(queue.put_nowait, (np.zeros(src_rate * gap_ms // 1000, np.int16),
                                                                     src_rate))
                    loop.call_soon_threadsafe(queue.put_nowait, (samples, src_rate))
                    gap_ms = STREAM_SENTENCE_GAP_MS
                gap_ms = STREAM_SENTENCE_GAP_MS if ends_sentence else CLAUSE_GAP_MS
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except BaseException as exc:  # handed to the consumer, who raises it as a TtsError
            loop.call_soon_threadsafe(queue.put_nowait, exc)

    worker = loop.run_in_executor(None, produce)
    n = samples_per_frame(rate)
    carry = np.zeros(0, dtype=np.int16)
    resampler: soxr.ResampleStream | None = None
    leading = True
    try:
        while True:
            item = await queue.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise TtsError(f"{engine.name}: {item}") from item
            samples, src_rate = item
            if src_rate != rate:
                if resampler is None:
                    resampler = soxr.ResampleStream(src_rate, rate, 1, dtype="int16")
                samples = resampler.resample_chunk(samples)
            if leading:  # the voice's lead-in silence is dead air before the reply's first sound
                samples = trim_lead(samples, rate)
                leading = not len(samples)
            carry = np.concatenate([carry, samples.astype(np.int16)])
            while len(carry) >= n:
                yield AudioFrame(carry[:n].copy(), rate, time.monotonic())
                carry = carry[n:]
        if resampler is not None:
            carry = np.concatenate([carry, resampler.resample_chunk(np.zeros(0, np.int16), last=True)])
        # The resampler's flush is its delay (55 ms from 22.05 kHz): every frame of it, not only the
        # first (the end of each streamed reply was cut by up to 55 ms).
        for frame in split_frames(carry, rate):
            yield frame
    finally:
        cancelled.set()
        await asyncio.wait([worker], timeout=0)


def render(engine: Synthesizer, text: str) -> tuple[np.ndarray, int]:
    """Whole text, blocking (for prompts rendered ahead of time)."""
    parts = list(engine.synthesize_sentences(text))
    if not parts:
        raise TtsError(f"{engine.name} produced no audio")
    rate = parts[0][1]
    gap = np.zeros(rate // 10, dtype=np.int16)
    out: list[np.ndarray] = []
    for samples, _ in parts:
        out += [samples, gap]
    return np.concatenate(out[:-1]), rate


class FallbackSynthesizer:
    """The first engine that works; a failing primary falls back to the next for that text."""

    def __init__(self, *engines: Synthesizer) -> None:
        self.engines = engines
        self.name = "+".join(e.name for e in engines)

    def synthesize_sentences(self, text: str) -> Iterator[tuple[np.ndarray, int]]:
        for i, engine in enumerate(self.engines):
            produced = False
            try:
                for item in engine.synthesize_sentences(text):
                    produced = True
                    yield item
                return
            except Exception as exc:  # any engine failure: the next engine still speaks
                if produced or i == len(self.engines) - 1:
                    raise
                log.warning("TTS %s failed (%s); falling back to %s", engine.name, type(exc).__name__,
                            self.engines[i + 1].name)
