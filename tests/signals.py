"""Test signals and measurements: continuous tones, French speech, alignment, frame levels."""

from __future__ import annotations

from functools import cache

import numpy as np

from agent.tts.espeak_engine import synthesize_espeak
from agent.tts.prompt_files import to_rate, write_wav  # noqa: F401 - write_wav re-exported for tests

RATE = 8000
FRAME = RATE // 50


def tone_mix(seconds: float, rate: int = RATE, level: float = 6000.0) -> np.ndarray:
    """A tone plus a slow chirp with an irregular tremolo: never silent (any lost 20 ms shows as a
    hole) and never repeating (it aligns at one place only)."""
    t = np.arange(int(seconds * rate)) / rate
    sweep = 300 + 2400 * t / max(seconds, 1e-9)  # Hz, rising over the whole signal
    chirp_phase = 2 * np.pi * np.cumsum(sweep) / rate
    x = np.sin(2 * np.pi * 440 * t) + 0.8 * np.sin(chirp_phase)
    x *= 0.75 + 0.15 * np.sin(2 * np.pi * 1.3 * t) + 0.1 * np.sin(2 * np.pi * 0.37 * t + 1)
    return (level * x / np.abs(x).max()).astype(np.int16)


@cache
def speech(text: str) -> np.ndarray:
    """French speech from espeak-ng at 8 kHz, leading and trailing silence trimmed."""
    samples, rate = synthesize_espeak(text)
    x = to_rate(samples, rate, RATE)
    rms = frame_rms(x)
    voiced = np.nonzero(rms > 300)[0]
    return x[voiced[0] * FRAME:(voiced[-1] + 1) * FRAME]


def frame_rms(x: np.ndarray, frame: int = FRAME) -> np.ndarray:
    n = len(x) // frame
    f = x[: n * frame].astype(np.float64).reshape(n, frame)
    return np.sqrt((f ** 2).mean(axis=1))


def align(heard: np.ndarray, ref: np.ndarray) -> tuple[int, float]:
    """Lag (samples) at which `ref` best matches inside `heard`, and the normalised
    cross-correlation there (1.0 = identical shape)."""
    h = heard.astype(np.float64)
    r = ref.astype(np.float64)
    n = 1 << int(np.ceil(np.log2(len(h) + len(r))))
    corr = np.fft.irfft(np.fft.rfft(h, n) * np.conj(np.fft.rfft(r, n)), n)[: len(h) - len(r) + 1]
    lag = int(np.argmax(corr))
    seg = h[lag:lag + len(r)]
    ncc = float(np.dot(seg, r) / (np.linalg.norm(seg) * np.linalg.norm(r) + 1e-9))
    return lag, ncc


def window_nccs(received: np.ndarray, ref: np.ndarray, lag: int, window: int = RATE // 10,
                slack: int = RATE // 50) -> list[float]:
    """Normalised cross-correlation of each `window`-sample piece of `ref`, each allowed to sit up to
    `slack` samples off the global alignment: a phone's jitter buffer may drop a few ms to cut its
    latency, which shifts what follows without damaging it (only the piece holding the cut suffers)."""
    out = []
    for start in range(0, len(ref) - window + 1, window):
        piece = ref[start:start + window].astype(np.float64)
        lo = max(0, lag + start - slack)
        hi = min(len(received), lag + start + window + slack)
        if hi - lo < window:
            out.append(0.0)
            continue
        out.append(align(received[lo:hi], piece)[1])
    return out
