"""G.711 μ-law, the telephone network's 8 kHz audio encoding, as lookup tables over numpy arrays.

Both directions of a Twilio media stream carry base64 μ-law at 8 kHz in 20 ms frames (160 bytes). The
codec is table-driven so that encoding or decoding a frame is one vectorised lookup, which is what lets
one process pace hundreds of calls in real time.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "FRAME_MS",
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "Pcm",
    "decode_ulaw",
    "encode_ulaw",
    "silence",
]

SAMPLE_RATE = 8000
"""Telephone audio: 8 kHz."""
FRAME_MS = 20
"""One media frame: 20 ms."""
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
"""Samples (and μ-law bytes) in one frame: 160."""

Pcm = npt.NDArray[np.int16]
"""Signed 16-bit linear PCM samples."""

_BIAS = 0x84
_CLIP = 32635


def _build_encode_table() -> npt.NDArray[np.uint8]:
    """μ-law byte for every 16-bit sample (65,536 entries, indexed by the sample as unsigned)."""
    samples = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(samples < 0, 0x80, 0x00)
    # The reference coder works on 14-bit samples (x >> 2, an arithmetic shift), so a negative sample's
    # magnitude rounds up to the next multiple of 4.
    magnitude = np.where(samples < 0, (-samples + 3) // 4 * 4, samples)
    magnitude = np.minimum(magnitude, _CLIP) + _BIAS
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    byte = ~(sign | (exponent << 4) | mantissa) & 0xFF
    table = np.empty(65536, dtype=np.uint8)
    table[(samples & 0xFFFF)] = byte.astype(np.uint8)
    return table


def _build_decode_table() -> npt.NDArray[np.int16]:
    """Linear sample for every μ-law byte."""
    byte = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


_ENCODE = _build_encode_table()
_DECODE = _build_decode_table()


def encode_ulaw(pcm: Pcm) -> bytes:
    """μ-law bytes of 16-bit PCM samples (one byte per sample)."""
    return bytes(_ENCODE[pcm.astype(np.int16).view(np.uint16)])


def decode_ulaw(data: bytes) -> Pcm:
    """16-bit PCM samples of μ-law bytes."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def silence(samples: int = FRAME_SAMPLES) -> Pcm:
    """Digital silence."""
    return np.zeros(samples, dtype=np.int16)
