"""The one audio type that travels through the call: `AudioFrame`, which carries its own rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

FRAME_MS: Final = 20
"""Every frame on the call path is 20 ms: the RTP packetisation Asterisk uses for G.711."""


@dataclass(frozen=True)
class AudioFrame:
    samples: np.ndarray
    """Mono signed 16-bit PCM (numpy int16), native byte order."""
    rate: int
    """Sample rate, Hz (8000 for G.711, 16000 for slin16)."""
    timestamp: float = 0.0
    """When the frame was captured or is due, seconds on time.monotonic()."""

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate

    def pcm(self) -> bytes:
        """Little-endian 16-bit PCM bytes (what webrtcvad and WAV files take)."""
        return self.samples.astype("<i2").tobytes()

    @classmethod
    def silence(cls, rate: int, ms: int = FRAME_MS, timestamp: float = 0.0) -> AudioFrame:
        return cls(np.zeros(rate * ms // 1000, dtype=np.int16), rate, timestamp)

    def rms(self) -> float:
        """Root-mean-square level in int16 units (0 to 32767)."""
        if len(self.samples) == 0:
            return 0.0
        return float(np.sqrt(np.mean(self.samples.astype(np.float64) ** 2)))


def samples_per_frame(rate: int) -> int:
    return rate * FRAME_MS // 1000


def split_frames(samples: np.ndarray, rate: int) -> list[AudioFrame]:
    """Cut int16 samples into 20 ms frames, the last one padded with silence."""
    n = samples_per_frame(rate)
    out = []
    for start in range(0, len(samples), n):
        chunk = samples[start:start + n]
        if len(chunk) < n:
            chunk = np.concatenate([chunk, np.zeros(n - len(chunk), dtype=np.int16)])
        out.append(AudioFrame(chunk.astype(np.int16), rate))
    return out
