"""Fixed prompts rendered ahead of time as 8 kHz 16-bit mono WAV, the format Asterisk plays as-is.

A prompt that is on disk plays with no synthesis delay and still plays when every speech engine is
down. Files are named by a hash of their text and voice, so a changed greeting is re-rendered and
an unchanged one costs nothing.

Engine: espeak-ng (Debian package), the fallback voice of the product. The Piper voice takes over
with the speech-engine work; this module keeps the file format and the cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import soxr

from agent.audio.frames import AudioFrame, split_frames

PROMPT_RATE_HZ: Final = 8000
ESPEAK_VOICE: Final = "fr"
ESPEAK_SPEED_WPM: Final = 175
ESPEAK_TIMEOUT_S: Final = 20.0

FALLBACK_TEXT: Final = (
    "Bonjour. Notre assistant est indisponible pour le moment. "
    "Après le bip, laissez votre nom, votre numéro et votre message, qui sera enregistré. "
    "L'artisan vous rappellera."
)
"""Played by the dialplan itself when the controller is down (extensions.conf, `fallback`)."""


class PromptError(RuntimeError):
    stage = "tts-prompt"

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Prompt:
    path: Path
    """The WAV file (8 kHz, 16-bit, mono)."""
    duration_s: float

    @property
    def media_uri(self) -> str:
        """What ARI's play operation takes: `sound:` + absolute path without the extension."""
        return "sound:" + str(self.path.with_suffix(""))


def synthesize_espeak(text: str, voice: str = ESPEAK_VOICE) -> tuple[np.ndarray, int]:
    """Speak `text` with espeak-ng; returns int16 samples and their rate in Hz."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise PromptError("espeak-ng is not installed (apt-get install espeak-ng)")
    try:
        out = subprocess.run([exe, "-v", voice, "-s", str(ESPEAK_SPEED_WPM), "--stdout", text],
                             capture_output=True, timeout=ESPEAK_TIMEOUT_S, check=True)
    except subprocess.CalledProcessError as exc:
        raise PromptError(f"espeak-ng failed: {exc.stderr.decode(errors='replace').strip()}") from exc
    except subprocess.TimeoutExpired as exc:
        raise PromptError("espeak-ng took too long", retryable=True) from exc
    return _read_wav_bytes(out.stdout)


def _read_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    # espeak-ng writes a streaming WAV header whose sizes are 0xFFFFFFFF; read the fmt chunk and
    # take everything after the data chunk header.
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise PromptError("espeak-ng did not produce a WAV")
    pos, rate, bits, channels = 12, 0, 0, 0
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if cid == b"fmt ":
            channels = int.from_bytes(data[pos + 10:pos + 12], "little")
            rate = int.from_bytes(data[pos + 12:pos + 16], "little")
            bits = int.from_bytes(data[pos + 22:pos + 24], "little")
        elif cid == b"data":
            pcm = data[pos + 8:]
            pcm = pcm[: len(pcm) - len(pcm) % 2]
            if bits != 16 or channels != 1 or rate <= 0:
                raise PromptError(f"unexpected WAV format: {bits} bit, {channels} channel(s), {rate} Hz")
            return np.frombuffer(pcm, dtype="<i2").copy(), rate
        pos += 8 + size + (size & 1)
    raise PromptError("WAV without a data chunk")


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
                  voice: str = ESPEAK_VOICE) -> Prompt:
    """Render `text` once into out_dir; reuse the file while text and voice are unchanged."""
    digest = hashlib.sha256(f"espeak-ng|{voice}|{ESPEAK_SPEED_WPM}|{text}".encode()).hexdigest()[:16]
    stem = name or f"prompt-{digest}"
    path = out_dir / f"{stem}.wav"
    stamp = out_dir / f".{stem}.sha"
    if path.exists() and stamp.exists() and stamp.read_text() == digest:
        with wave.open(str(path), "rb") as w:
            return Prompt(path, w.getnframes() / w.getframerate())
    samples, rate = synthesize_espeak(text, voice)
    samples = to_rate(samples, rate)
    write_wav(path, samples)
    stamp.write_text(digest)
    return Prompt(path, len(samples) / PROMPT_RATE_HZ)


GOODBYE_TEXT: Final = "Merci, votre message est bien enregistré. L'artisan vous rappelle au plus vite. Au revoir."


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
