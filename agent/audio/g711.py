"""G.711 µ-law and A-law with numpy lookup tables (ITU-T G.711; no `audioop`, gone in 3.13).

Decoding is a 256-entry table. Encoding is a 65536-entry table indexed by the 16-bit sample,
built once at import from the reference segment algorithm (about 1 ms).
"""

from __future__ import annotations

from typing import Final

import numpy as np

_BIAS: Final = 0x84


def _ulaw_encode_ref(x: np.ndarray) -> np.ndarray:
    # Sun's reference g711.c (also what audioop did): work on the 14-bit value.
    v = x.astype(np.int32) >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    v = np.minimum(np.abs(v), 8159) + (_BIAS >> 2)
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), v)
    uval = (np.minimum(seg, 7) << 4) | ((v >> (np.minimum(seg, 7) + 1)) & 0x0F)
    uval = np.where(seg >= 8, 0x7F, uval)
    return ((uval ^ mask) & 0xFF).astype(np.uint8)


def _ulaw_decode_ref(u: np.ndarray) -> np.ndarray:
    u = (~u.astype(np.int32)) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    mag = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -mag, mag).astype(np.int16)


def _alaw_encode_ref(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int32)
    sign = np.where(x >= 0, 0x80, 0)
    mag = np.minimum(np.where(x >= 0, x, -x - 1), 32767) >> 3  # 13-bit magnitude
    exponent = np.where(mag >= 32, np.floor(np.log2(np.maximum(mag, 1))).astype(np.int32) - 4, 0)
    exponent = np.clip(exponent, 0, 7)
    mantissa = np.where(exponent == 0, mag >> 1, mag >> exponent) & 0x0F
    out: np.ndarray = ((sign | (exponent << 4) | mantissa) ^ 0x55).astype(np.uint8)
    return out


def _alaw_decode_ref(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.int32) ^ 0x55
    sign = a & 0x80
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    mag = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1))
    return np.where(sign != 0, mag, -mag).astype(np.int16)


_ALL16: Final = np.arange(-32768, 32768, dtype=np.int32)
_ALL8: Final = np.arange(256, dtype=np.int32)
ULAW_DECODE: Final = _ulaw_decode_ref(_ALL8)
ALAW_DECODE: Final = _alaw_decode_ref(_ALL8)
ULAW_ENCODE: Final = _ulaw_encode_ref(_ALL16)
ALAW_ENCODE: Final = _alaw_encode_ref(_ALL16)


def ulaw_encode(samples: np.ndarray) -> bytes:
    return ULAW_ENCODE[samples.astype(np.int32) + 32768].tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    out: np.ndarray = ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]
    return out


def alaw_encode(samples: np.ndarray) -> bytes:
    return ALAW_ENCODE[samples.astype(np.int32) + 32768].tobytes()


def alaw_decode(data: bytes) -> np.ndarray:
    out: np.ndarray = ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]
    return out
