"""A caller's speech for the test phones: French from espeak-ng at 8 kHz, and how much of a
recording is speech."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np

from agent.asr.scripted import PAUSE
from agent.tts.espeak_engine import synthesize_espeak
from agent.tts.prompt_files import to_rate

CLOCK_RATE_HZ: Final = 8000
SPEECH_RMS: Final = 300.0
"""A 20 ms frame louder than this (int16 RMS) is speech heard at the phone."""


def speech_seconds(samples: np.ndarray, rate: int = CLOCK_RATE_HZ, threshold: float = 300.0) -> float:
    """Seconds of 20 ms frames whose RMS exceeds `threshold` (int16 units): 'non-silent audio'."""
    frame = rate // 50
    n = len(samples) // frame
    if n == 0:
        return 0.0
    frames = samples[: n * frame].astype(np.float64).reshape(n, frame)
    rms = np.sqrt((frames**2).mean(axis=1))
    return float((rms > threshold).sum()) / 50.0


def frame_rms(x: np.ndarray, frame: int = CLOCK_RATE_HZ // 50) -> np.ndarray:
    n = len(x) // frame
    f = x[: n * frame].astype(np.float64).reshape(n, frame)
    rms: np.ndarray = np.sqrt((f ** 2).mean(axis=1))
    return rms


def french_speech(text: str) -> np.ndarray:
    """French speech from espeak-ng at 8 kHz, leading and trailing silence trimmed: a caller."""
    samples, rate = synthesize_espeak(text)
    x = to_rate(samples, rate, CLOCK_RATE_HZ)
    voiced = np.nonzero(frame_rms(x) > SPEECH_RMS)[0]
    frame = CLOCK_RATE_HZ // 50
    return x[voiced[0] * frame:(voiced[-1] + 1) * frame]


PAUSE_MS: Final = 500
"""A caller's pause inside a sentence (after "euh", between the pairs of a number): shorter than the
700 ms hangover, longer than the 200 ms at which the end of a turn is decided."""


def voiced_ms(texts: list[str] | tuple[str, ...]) -> dict[str, list[int]]:
    """For each text, the voiced audio of each of its stretches (between its `|` pauses) as the
    phones say it, ms: frames loud enough for the receptionist's VAD. Given to the scripted
    recogniser (`voiced_ms`), it shows each word once that much of its stretch has been heard."""
    from agent.audio.vad import DEFAULT_MIN_RMS

    return {text: [int((frame_rms(french_speech(piece.strip())) >= DEFAULT_MIN_RMS).sum()) * 20
                   for piece in text.split(PAUSE) if piece.strip()] for text in dict.fromkeys(texts) if text.strip()}


def speech_files(folder: Path, texts: list[str] | tuple[str, ...]) -> list[Path]:
    """A caller's turns as French speech, one WAV each (8 kHz) with a 100 ms lead-in; a `|` in a text
    is a PAUSE_MS pause."""
    from agent.audio.wav import write_wav

    out = []
    gap = np.zeros(CLOCK_RATE_HZ * PAUSE_MS // 1000, np.int16)
    for i, text in enumerate(texts):
        path = folder / f"turn-{i}.wav"
        parts: list[np.ndarray] = [np.zeros(CLOCK_RATE_HZ // 10, np.int16)]
        for k, piece in enumerate(p for p in text.split(PAUSE) if p.strip()):
            parts += ([gap] if k else []) + [french_speech(piece.strip())]
        write_wav(path, np.concatenate(parts), CLOCK_RATE_HZ)
        out.append(path)
    return out
