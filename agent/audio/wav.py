"""WAV files on disk: 16-bit mono PCM, written atomically (Asterisk may be reading the old file)."""

from __future__ import annotations

import os
import tempfile
import wave
from pathlib import Path

import numpy as np


def write_wav(path: Path, samples: np.ndarray, rate: int = 8000, mode: int = 0o640) -> None:
    """Write int16 samples at `rate` Hz; the file appears whole or not at all. `mode` 0o640: the
    Asterisk group may read prompts, other local users read nothing (voice messages are personal)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".wav")
    os.close(fd)
    try:
        with wave.open(tmp, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(samples.astype("<i2").tobytes())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)

