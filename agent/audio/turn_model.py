"""Smart Turn v3.2: whether the caller has finished speaking, from the sound of the utterance
(intonation, a word left hanging), not from the length of the silence.

The model (Whisper-tiny based, BSD-2, Daily; about 8.7 MB, 23 languages including French) and its
numpy Whisper feature extractor come from the pipecat-ai wheel on PyPI, pinned by version and
sha256 and unpacked into `models/smart-turn/` by `scripts/install-turn-model.sh` (`make venv`,
`make models`): pipecat-ai itself is not installed, its 25 dependencies (numba, openai, Pillow...)
would be for one 7 KB function. It runs with onnxruntime (already here for Piper) on the last 8 s
of the utterance resampled 8 -> 16 kHz (soxr, as Vosk's input already is).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Protocol

import numpy as np

log = logging.getLogger(__name__)

MODEL_DIR: Final = "smart-turn"
"""Its folder in the models directory (paths.models)."""
MODEL_FILE: Final = "smart-turn-v3.2-cpu.onnx"
FEATURES_FILE: Final = "whisper_features.py"
MODEL_RATE: Final = 16000
WINDOW_S: Final = 8
"""The model reads the last 8 s of the utterance (padded with silence in front when shorter)."""


class TurnModelError(RuntimeError):
    """The end-of-turn model could not be loaded or failed on an utterance."""


class TurnModel(Protocol):
    name: str

    def finished(self, samples: np.ndarray, rate: int) -> float:
        """The probability that the caller has finished their turn (0-1), from its int16 samples."""


class SmartTurn:
    """One model per process; `finished` is thread-safe (onnxruntime sessions are) and blocking:
    run it off the event loop."""

    name = "smart-turn-v3.2"

    def __init__(self, directory: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        started = time.monotonic()
        model = directory / MODEL_FILE
        features = directory / FEATURES_FILE
        if not model.is_file() or not features.is_file():
            raise TurnModelError(f"{directory}: no {MODEL_FILE} / {FEATURES_FILE} (scripts/install-turn-model.sh)")
        try:
            spec = importlib.util.spec_from_file_location("standardiste_whisper_features", features)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._features: Callable[..., np.ndarray] = module.compute_whisper_log_mel_features
            options = ort.SessionOptions()
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = threads
            self._session = ort.InferenceSession(str(model), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise TurnModelError(f"cannot load {model}: {type(exc).__name__}: {exc}") from exc
        self._lock = threading.Lock()
        self.load_seconds = time.monotonic() - started

    def finished(self, samples: np.ndarray, rate: int) -> float:
        import soxr

        audio = samples.astype(np.float32) / 32768.0
        if rate != MODEL_RATE:
            audio = soxr.resample(audio, rate, MODEL_RATE, quality="HQ").astype(np.float32)
        n = WINDOW_S * MODEL_RATE
        audio = audio[-n:] if len(audio) > n else np.pad(audio, (n - len(audio), 0))
        try:
            mel = self._features(audio, do_normalize=True)
            out = self._session.run(None, {"input_features": mel[np.newaxis].astype(np.float32)})
        except Exception as exc:
            raise TurnModelError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        return float(np.asarray(out[0]).ravel()[0])


def load_turn_model(directory: Path) -> SmartTurn | None:
    """The model, or None (with one log line: the end of a turn is then the fixed pause)."""
    try:
        model = SmartTurn(directory)
    except TurnModelError as exc:
        log.warning("end-of-turn model unavailable (%s): the end of a turn is the fixed pause", exc)
        return None
    log.info("end-of-turn model %s loaded in %.2f s", model.name, model.load_seconds)
    return model


FINISHED: Final = 0.5
"""From this probability the caller is taken as done (the model's own threshold)."""
MAX_WAITING: Final = 2
"""Decisions waiting for the model at most, all calls together: beyond, a pause is left to the
hangover (the fixed pause) rather than queued behind others' decisions."""


class TurnDecider:
    """The model shared by every call, on its own thread, with a bounded queue: never on the event
    loop, never more than MAX_WAITING decisions waiting. A model that fails is set aside for the
    rest of the process, with one log line: the end of a turn is then the fixed pause."""

    def __init__(self, model: TurnModel) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.model = model
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turn")
        self._waiting = 0
        self.failed: str | None = None
        self.skipped = 0
        """Decisions left to the hangover because the queue was full."""

    async def finished(self, samples: np.ndarray, rate: int) -> float | None:
        """The model's probability that the turn is over; None: no decision (busy, failed)."""
        import asyncio

        if self.failed is not None:
            return None
        if self._waiting >= MAX_WAITING:
            self.skipped += 1
            return None
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self.model.finished, samples, rate)
        except Exception as exc:
            self.failed = f"{type(exc).__name__}: {exc}"
            log.warning("end-of-turn model failed (%s): the end of a turn is the fixed pause from now on",
                        self.failed)
            return None
        finally:
            self._waiting -= 1
