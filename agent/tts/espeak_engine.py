"""espeak-ng: robotic but always there (a Debian package), ~10-40 ms a sentence. The fallback voice."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Final

import numpy as np

from agent.tts.base import TtsError, sentences

ESPEAK_VOICE: Final = "fr"
ESPEAK_SPEED_WPM: Final = 175
ESPEAK_TIMEOUT_S: Final = 20.0


def synthesize_espeak(text: str, voice: str = ESPEAK_VOICE) -> tuple[np.ndarray, int]:
    """Speak `text` with espeak-ng; returns int16 samples and their rate in Hz."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise TtsError("espeak-ng is not installed (apt-get install espeak-ng)")
    try:
        out = subprocess.run([exe, "-v", voice, "-s", str(ESPEAK_SPEED_WPM), "--stdout", text],
                             capture_output=True, timeout=ESPEAK_TIMEOUT_S, check=True)
    except subprocess.CalledProcessError as exc:
        raise TtsError(f"espeak-ng failed: {exc.stderr.decode(errors='replace').strip()}") from exc
    except subprocess.TimeoutExpired as exc:
        raise TtsError("espeak-ng took too long", retryable=True) from exc
    return _read_wav_bytes(out.stdout)


def _read_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    # espeak-ng writes a streaming WAV header whose sizes are 0xFFFFFFFF; read the fmt chunk and
    # take everything after the data chunk header.
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise TtsError("espeak-ng did not produce a WAV")
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
                raise TtsError(f"unexpected WAV format: {bits} bit, {channels} channel(s), {rate} Hz")
            return np.frombuffer(pcm, dtype="<i2").copy(), rate
        pos += 8 + size + (size & 1)
    raise TtsError("WAV without a data chunk")


class EspeakEngine:
    def __init__(self, voice: str = ESPEAK_VOICE) -> None:
        self.voice = voice
        self.name = f"espeak-ng:{voice}:{ESPEAK_SPEED_WPM}"

    def synthesize_sentences(self, text: str) -> Iterator[tuple[np.ndarray, int]]:
        for sentence in sentences(text):
            yield synthesize_espeak(sentence, self.voice)
