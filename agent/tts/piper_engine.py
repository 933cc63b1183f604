"""Piper (VITS on onnxruntime): one voice loaded per process; one chunk per sentence."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from agent import engine_hooks
from agent.tts.base import TtsError

log = logging.getLogger(__name__)


def _load(model_path: Path, config_path: Path | None) -> Any:
    """`PiperVoice.load` (piper-tts 1.8.0, pinned) on the CPU, with an onnxruntime session whose
    threads do not spin: by default its threads busy-wait after every operator, taking the cores from
    the recogniser and the event loop during a synthesis. `make bench-engines`, two runs, a sentence
    beside a busy thread: 156 / 180 ms spinning, 147 / 144 ms not, and the busy thread got 1.2-2.6
    times as much done; alone, the same (63-75 vs 65-66 ms). tests/unit/test_engines.py checks it."""
    import json

    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with open(config_path or f"{model_path}.json", encoding="utf-8") as f:
        config = PiperConfig.from_dict(json.load(f))
    session = onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
    return PiperVoice(session=session, config=config)


class PiperEngine:
    def __init__(self, model_path: Path, config_path: Path | None = None, *,
                 espeak_voice: str | None = None) -> None:
        """`espeak_voice` overrides the voice's phonemizer language: a stand-in English voice
        given "fr" speaks French phonemes (accented)."""
        started = time.monotonic()
        try:
            voice = _load(model_path, config_path)
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
