"""The one audio type that travels through the call: `AudioFrame`, which carries its own rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

FRAME_MS: Final = 20
FRAME_S: Final = FRAME_MS / 1000
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


LEAD_LEVEL: Final = 64
"""A sample quieter than this (int16; about -54 dBFS) before a reply's first sound is the voice's
lead-in silence, not speech: Piper starts each sentence with 20-60 ms of it."""
LEAD_KEEP_MS: Final = 5
"""Kept of the lead-in before the first sound: the onset's ramp."""


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


def trim_lead(samples: np.ndarray, rate: int) -> np.ndarray:
    """`samples` from LEAD_KEEP_MS before their first sound: the lead-in silence of a voice is dead air
    the caller hears before every reply (20-60 ms a sentence). Empty if nothing is louder than
    LEAD_LEVEL."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) >= LEAD_LEVEL)
    if not len(loud):
        return samples[len(samples):]
    return samples[max(0, int(loud[0]) - rate * LEAD_KEEP_MS // 1000):]
