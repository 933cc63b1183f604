"""Fixed prompts rendered ahead of time as 8 kHz 16-bit mono WAV, the format Asterisk plays as-is.

A prompt that is on disk plays with no synthesis delay and still plays when every speech engine is
down. Files are named by a hash of their text and voice, so a changed greeting is re-rendered and
an unchanged one costs nothing.

Rendered by whichever engine is running (Piper, else espeak-ng); the engine's name is part of
the cache key, so installing the production voice re-renders every prompt once.
"""

from __future__ import annotations

import hashlib
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import soxr

from agent.audio.frames import AudioFrame, split_frames, trim_lead
from agent.audio.wav import write_wav
from agent.tts.base import Synthesizer, render
from agent.tts.espeak_engine import EspeakEngine

PROMPT_RATE_HZ: Final = 8000
PROMPT_MODE: Final = 0o644
"""Fixed prompts hold no personal data; Asterisk (another user in production) plays them."""

@dataclass(frozen=True)
class Prompt:
    path: Path
    """The WAV file (8 kHz, 16-bit, mono)."""
    duration_s: float
    cached: bool = False
    """Reused as it was rendered before (same text and voice), not synthesised now."""

    @property
    def media_uri(self) -> str:
        """What ARI's play operation takes: `sound:` + absolute path without the extension."""
        return "sound:" + str(self.path.with_suffix(""))


def to_rate(samples: np.ndarray, rate: int, target: int = PROMPT_RATE_HZ) -> np.ndarray:
    if rate == target:
        return samples
    out = soxr.resample(samples.astype(np.float32) / 32768.0, rate, target, quality="HQ")
    clipped: np.ndarray = np.clip(np.round(out * 32767.0), -32768, 32767).astype(np.int16)
    return clipped


def _files(text: str, out_dir: Path, name: str | None, engine: Synthesizer) -> tuple[Path, Path, str]:
    """The WAV, its stamp (the digest of the voice and text it was rendered from) and that digest."""
    digest = hashlib.sha256(f"{engine.name}|{text}".encode()).hexdigest()[:16]
    stem = name or f"prompt-{digest}"
    return out_dir / f"{stem}.wav", out_dir / f".{stem}.sha", digest


def is_rendered(text: str, out_dir: Path, name: str | None = None, engine: Synthesizer | None = None) -> bool:
    """Whether `render_prompt` would reuse a file (the same text, rendered by the same voice)."""
    path, stamp, digest = _files(text, out_dir, name, engine or EspeakEngine())
    return path.exists() and stamp.exists() and stamp.read_text() == digest


def render_prompt(text: str, out_dir: Path, name: str | None = None,
                  engine: Synthesizer | None = None) -> Prompt:
    """Render `text` once into out_dir; reuse the file while text and voice are unchanged."""
    engine = engine or EspeakEngine()
    path, stamp, digest = _files(text, out_dir, name, engine)
    if path.exists() and stamp.exists() and stamp.read_text() == digest:
        with wave.open(str(path), "rb") as w:
            return Prompt(path, w.getnframes() / w.getframerate(), cached=True)
    samples, rate = render(engine, text)
    samples = to_rate(samples, rate)
    write_wav(path, samples, PROMPT_RATE_HZ, mode=PROMPT_MODE)
    stamp.write_text(digest)
    return Prompt(path, len(samples) / PROMPT_RATE_HZ)


def load_frames(prompt: Prompt, rate: int) -> list[AudioFrame]:
    """A prompt as 20 ms frames at the call's media rate (resampled once, here at the edge), from
    its first sound (the voice's lead-in silence left out)."""
    with wave.open(str(prompt.path), "rb") as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        file_rate = w.getframerate()
    samples = to_rate(samples, file_rate, rate)
    return split_frames(trim_lead(samples, rate) if np.any(samples) else samples, rate)


BEEP_HZ: Final = 1000.0
BEEP_S: Final = 0.25


def render_beep(out_dir: Path, name: str = "beep") -> Prompt:
    """The tone before a voice message (Asterisk's own sound files are not installed on the box)."""
    path = out_dir / f"{name}.wav"
    n = int(BEEP_S * PROMPT_RATE_HZ)
    t = np.arange(n) / PROMPT_RATE_HZ
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)  # 5 ms fades: no clicks
    tone = 0.4 * 32767 * np.sin(2 * np.pi * BEEP_HZ * t) * ramp
    if not path.exists():
        write_wav(path, tone.astype(np.int16), PROMPT_RATE_HZ, mode=PROMPT_MODE)
    return Prompt(path, BEEP_S)
