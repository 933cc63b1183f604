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
RESET_EVERY_S: Final = 2.0
RESET_BELOW: Final = 0.1
RESET_AFTER_LOW: Final = 5
"""The recurrent state is cleared every RESET_EVERY_S of audio, once the caller is quiet and the last
RESET_AFTER_LOW chunks (160 ms) scored under RESET_BELOW: pipecat's policy and figures
(pipecat/audio/vad/silero.py, 1.14). At 8 kHz a long silence drives the state where the model
under-reports the speech that follows: 40 s into a bench call a 180 ms "oui" scored 0.01-0.41 until
its last 40 ms (0.82-0.91 on a fresh state), never started an utterance, and the caller's answer was
lost."""


@cache
def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def preload(path: Path) -> None:
    """Load the model now (at start-up, off the event loop): the first call's detector then takes
    the session already made (about 50 ms otherwise, on the loop that carries the calls)."""
    _session(path)


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
        self._chunks = 0
        self._low = 0
        self.threshold = threshold
        self._lock = threading.Lock()

    def voiced(self, samples: np.ndarray, threshold: float | None = None, quiet: bool = False) -> bool:
        """Feed one frame's int16 samples; whether the last complete chunk is speech (its probability
        at least `threshold`, by default the one this voice was made with). `quiet`: the caller is
        not speaking (no utterance in progress): the state may be cleared (RESET_EVERY_S)."""
        return self.probability(samples, quiet) >= (self.threshold if threshold is None else threshold)

    def probability(self, samples: np.ndarray, quiet: bool = False) -> float:
        """Feed one frame's int16 samples; the speech probability of the last complete chunk."""
        with self._lock:
            self._pending = np.concatenate([self._pending, samples.astype(np.float32) / 32768.0])
            while len(self._pending) >= CHUNK:
                chunk = np.concatenate([self._context, self._pending[np.newaxis, :CHUNK]], axis=1)
                self._pending = self._pending[CHUNK:]
                out, self._state = self._session.run(None, {"input": chunk, "state": self._state, "sr": self._rate})
                self._context = chunk[:, -CONTEXT:]
                self._p = float(np.asarray(out).ravel()[0])
                self._chunks += 1
                self._low = self._low + 1 if self._p < RESET_BELOW else 0
                if quiet and self._low >= RESET_AFTER_LOW and self._chunks * CHUNK >= RESET_EVERY_S * 8000:
                    self._state = np.zeros_like(self._state)
                    self._context = np.zeros_like(self._context)
                    self._chunks = 0
            return self._p
