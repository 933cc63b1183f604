"""Silero VAD (v5, MIT) as the voiced/unvoiced decision of the turn detector, instead of webrtcvad.

The ONNX model comes from the pipecat-ai wheel with Smart Turn (`scripts/install-turn-model.sh`,
models/smart-turn/silero_vad.onnx). At 8 kHz it reads 256-sample chunks (32 ms) with the last 32
samples of the previous chunk as context and a recurrent state: one `SileroVoice` per call keeps
them; the model (one per process) is shared. A 20 ms frame is voiced when the last chunk completed
is. `scripts/compare_vad.py` measured it against webrtcvad in noise (README "Performance").
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import Any, Final

import numpy as np

CHUNK: Final = 256
CONTEXT: Final = 32
"""At 8 kHz (the model's sizes at 16 kHz are 512 and 64)."""
THRESHOLD: Final = 0.5
GOING_ON: Final = 0.4
"""Inside an utterance, speech going on after a pause needs only this (Silero's own VADIterator ends
speech below its threshold - 0.15, 0.35): a word's nasal onset ("mon" after "Bonjour, | euh, |")
stayed at 0.45 for 160 ms, and counted as silence it stretched a 500 ms pause past the 700 ms
hangover: the caller was cut. 0.4 is the lowest that still sees every marked pause of
scripts/compare_vad.py's utterances in street, car and wind noise as the turn detector runs them
(0.35 lost 2 of 10 in street noise)."""


@cache
def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class SileroVoice:
    def __init__(self, path: Path, rate: int = 8000, threshold: float = THRESHOLD) -> None:
        if rate != 8000:
            raise ValueError(f"Silero VAD is used at the line's 8 kHz here, not {rate} Hz")
        self._session = _session(path)
        self._rate = np.array(rate, np.int64)
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros((1, CONTEXT), np.float32)
        self._pending = np.zeros(0, np.float32)
        self._p = 0.0
        self.threshold = threshold
        self._lock = threading.Lock()

    def voiced(self, samples: np.ndarray, threshold: float | None = None) -> bool:
        """Feed one frame's int16 samples; whether the last complete chunk is speech (its probability
        at least `threshold`, by default the one this voice was made with)."""
        return self.probability(samples) >= (self.threshold if threshold is None else threshold)

    def probability(self, samples: np.ndarray) -> float:
        """Feed one frame's int16 samples; the speech probability of the last complete chunk."""
        with self._lock:
            self._pending = np.concatenate([self._pending, samples.astype(np.float32) / 32768.0])
            while len(self._pending) >= CHUNK:
                chunk = np.concatenate([self._context, self._pending[np.newaxis, :CHUNK]], axis=1)
                self._pending = self._pending[CHUNK:]
                out, self._state = self._session.run(None, {"input": chunk, "state": self._state, "sr": self._rate})
                self._context = chunk[:, -CONTEXT:]
                self._p = float(np.asarray(out).ravel()[0])
            return self._p
