"""Fixed prompts rendered ahead of time as 8 kHz 16-bit mono WAV, the format Asterisk plays as-is.

A prompt that is on disk plays with no synthesis delay and still plays when every speech engine is
down. Files are named by a hash of their text and voice, so a changed greeting is re-rendered and
an unchanged one costs nothing.

Rendered by whichever engine is running (Piper, else espeak-ng); the engine's name is part of
the cache key, so installing the production voice re-renders every prompt once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import soxr

from agent.audio.frames import AudioFrame, split_frames
from agent.tts.base import Synthesizer, render
from agent.tts.espeak_engine import EspeakEngine

PROMPT_RATE_HZ: Final = 8000

FALLBACK_TEXT: Final = (
    "Bonjour. Notre assistant est indisponible pour le moment. "
    "Après le bip, laissez votre nom, votre numéro et votre message, qui sera enregistré. "
    "L'artisan vous rappellera."
)
"""Played by the dialplan itself when the controller is down (extensions.conf, `fallback`)."""


@dataclass(frozen=True)
class Prompt:
    path: Path
    """The WAV file (8 kHz, 16-bit, mono)."""
    duration_s: float

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


def write_wav(path: Path, samples: np.ndarray, rate: int = PROMPT_RATE_HZ) -> None:
    """Write atomically: Asterisk may be reading the old file while we write the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".wav")
    os.close(fd)
    try:
        with wave.open(tmp, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(samples.astype("<i2").tobytes())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def render_prompt(text: str, out_dir: Path, name: str | None = None,
                  engine: Synthesizer | None = None) -> Prompt:
    """Render `text` once into out_dir; reuse the file while text and voice are unchanged."""
    engine = engine or EspeakEngine()
    digest = hashlib.sha256(f"{engine.name}|{text}".encode()).hexdigest()[:16]
    stem = name or f"prompt-{digest}"
    path = out_dir / f"{stem}.wav"
    stamp = out_dir / f".{stem}.sha"
    if path.exists() and stamp.exists() and stamp.read_text() == digest:
        with wave.open(str(path), "rb") as w:
            return Prompt(path, w.getnframes() / w.getframerate())
    samples, rate = render(engine, text)
    samples = to_rate(samples, rate)
    write_wav(path, samples)
    stamp.write_text(digest)
    return Prompt(path, len(samples) / PROMPT_RATE_HZ)


GOODBYE_TEXT: Final = "Merci, votre message est bien enregistré. L'artisan vous rappelle au plus vite. Au revoir."
NOT_UNDERSTOOD_TEXT: Final = "Excusez-moi, je n'ai pas bien compris. Pouvez-vous répéter, s'il vous plaît ?"
TAKE_MESSAGE_TEXT: Final = (
    "Je vais prendre un message pour l'artisan. Dites votre nom, votre adresse et votre demande, "
    "je l'enregistre."
)
FIXED_PROMPTS: Final = {
    "fallback": FALLBACK_TEXT,
    "not-understood": NOT_UNDERSTOOD_TEXT,
    "take-message": TAKE_MESSAGE_TEXT,
}
"""Rendered at start-up under these names: the dialplan plays `fallback` itself."""


def load_frames(prompt: Prompt, rate: int) -> list[AudioFrame]:
    """A prompt as 20 ms frames at the call's media rate (resampled once, here at the edge)."""
    with wave.open(str(prompt.path), "rb") as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        file_rate = w.getframerate()
    return split_frames(to_rate(samples, file_rate, rate), rate)


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
        write_wav(path, tone.astype(np.int16))
    return Prompt(path, BEEP_S)
