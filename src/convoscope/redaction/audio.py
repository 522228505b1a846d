"""Silence stretches of a recording: the audio side of masking a value that was said aloud.

The recording is decoded with libsndfile into samples of its own width (16-bit PCM stays 16-bit
integers), the stretches are set to zero on the channels they concern, and the file is written back in
its own container and encoding. Samples outside the stretches are written back exactly as read for PCM
and float encodings; compressed encodings (MP3, Ogg) are re-encoded, as any edit of them must be.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from ..audio.probe import probe_audio
from ..errors import AudioFormatError

__all__ = ["Silence", "mute_audio"]

_WIDTHS = {"PCM_16": "int16", "PCM_S8": "int16", "PCM_U8": "int16", "PCM_24": "int32", "PCM_32": "int32"}
_FLOATS = {"FLOAT": "float32", "DOUBLE": "float64"}


@dataclass(frozen=True, slots=True)
class Silence:
    """A stretch of the recording's own clock to silence, on ``channels`` (None: every channel)."""

    start_s: float
    end_s: float
    channels: frozenset[int] | None = None


def mute_audio(data: bytes, stretches: Sequence[Silence], *, name: str = "recording") -> bytes:
    """The recording ``data`` with every stretch silenced, in its own format; ``AudioFormatError`` when
    the bytes are not a recording libsndfile can read."""
    info = probe_audio(data, filename=name)
    dtype = _WIDTHS.get(info.subtype) or _FLOATS.get(info.subtype) or "float32"
    try:
        with sf.SoundFile(io.BytesIO(data)) as sound:
            container, subtype, endian = sound.format, sound.subtype, sound.endian
            samples = sound.read(dtype=dtype, always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFormatError(f"{name}: cannot decode to mute it: {exc}") from None
    frames, channels = samples.shape
    for stretch in stretches:
        first = max(0, math.floor(stretch.start_s * info.sample_rate))
        last = min(frames, math.ceil(stretch.end_s * info.sample_rate))
        if last <= first:
            continue
        wanted = range(channels) if stretch.channels is None else sorted(stretch.channels)
        columns = [channel for channel in wanted if 0 <= channel < channels]
        samples[first:last, columns] = np.zeros((), dtype=samples.dtype)
    out = io.BytesIO()
    try:
        sf.write(out, samples, info.sample_rate, format=container, subtype=subtype, endian=endian)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioFormatError(f"{name}: cannot write the muted recording back: {exc}") from None
    return out.getvalue()
