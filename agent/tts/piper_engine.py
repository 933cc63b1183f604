"""Piper (VITS on onnxruntime): one voice loaded per process; one chunk per sentence."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from agent import engine_hooks
from agent.tts.base import TtsError

log = logging.getLogger(__name__)


class PiperEngine:
    def __init__(self, model_path: Path, config_path: Path | None = None, *,
                 espeak_voice: str | None = None) -> None:
        """`espeak_voice` overrides the voice's phonemizer language: a stand-in English voice
        given "fr" speaks French phonemes (accented)."""
        from piper import PiperVoice

        started = time.monotonic()
        try:
            voice = PiperVoice.load(model_path, config_path)
        except Exception as exc:  # onnxruntime / json errors: a bad or missing voice file
            raise TtsError(f"cannot load the Piper voice {model_path}: {exc}") from exc
        if espeak_voice:
            voice.config.espeak_voice = espeak_voice
        self._voice = voice
        self._lock = threading.Lock()  # one onnxruntime session: one synthesis at a time
        self.rate = int(voice.config.sample_rate)
        self.load_seconds = time.monotonic() - started
        self.name = f"piper:{model_path.stem}" + (f" (phonemes {espeak_voice})" if espeak_voice else "")
        log.info("TTS voice %s (%d Hz) loaded in %.2f s", self.name, self.rate, self.load_seconds)

    def synthesize_sentences(self, text: str) -> Iterator[tuple[np.ndarray, int]]:
        engine_hooks.before_use("tts")  # tests only (STANDARDISTE_FAULTS): a crash or a hang of the voice
        with self._lock:
            for chunk in self._voice.synthesize(text):
                yield chunk.audio_int16_array.astype(np.int16), int(chunk.sample_rate)
