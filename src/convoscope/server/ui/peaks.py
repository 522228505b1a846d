"""Waveform peaks of a stored recording, computed here so the browser never decodes the audio.

A call's recording can be an hour of audio (100 MiB and more). Handing that to wavesurfer to decode would
download and hold it all in the tab before a waveform appears, so the call page asks for peaks instead:
per channel, the largest absolute sample of each of at most :data:`MAX_POINTS` equal stretches of the file.
That is a few tens of kilobytes whatever the call's length; the media element then streams the audio
(``Range`` requests) only when it plays.

The file is decoded by libsndfile (``soundfile``, the library :mod:`convoscope.audio.load` decodes with)
in blocks, because :func:`~convoscope.audio.load.load_recording` resamples the whole file into memory and
merges channels by role, while peaks want each channel as it is, on the file's own clock (the page applies
the recording's ``offset_s``). A recording's bytes never change under its sha256, so the peaks are cached
by (sha256, points) in a small in-process LRU: the first page view of a call computes them, later ones
and other users read them from memory.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from ...errors import AudioFormatError

__all__ = ["MAX_POINTS", "Peaks", "compute_peaks", "peaks_cache"]

MAX_POINTS = 4000
"""Peaks per channel at most: more than a 1,600 px wide waveform shows, a few tens of KB of JSON."""

_BLOCK_FRAMES = 1 << 16
"""Frames decoded at a time: a few hundred KB of float32 however long the recording is."""

_CACHE_ENTRIES = 64

_Opener = Callable[[str], BinaryIO]
"""``BlobStore.open``: a readable binary file of a blob."""


@dataclass(frozen=True, slots=True)
class Peaks:
    """Per channel, the largest absolute sample of each of ``points`` equal stretches of the file."""

    sha256: str
    duration_s: float
    sample_rate: int
    points: int
    channels: tuple[tuple[float, ...], ...]


def compute_peaks(sha256: str, handle: BinaryIO, *, points: int = MAX_POINTS) -> Peaks:
    """Read the recording in ``handle`` block by block and keep each stretch's peak, rounded to 1/1000.

    Raises :class:`AudioFormatError` when libsndfile cannot read it (a stored blob that is not audio).
    """
    import numpy as np
    import soundfile as sf

    try:
        with sf.SoundFile(handle) as sound:
            frames, channels, rate = int(sound.frames), int(sound.channels), int(sound.samplerate)
            if frames <= 0 or rate <= 0:
                raise AudioFormatError(f"recording {sha256[:12]}: no audio frames")
            count = max(1, min(points, frames))
            bucket = math.ceil(frames / count)
            block = bucket * max(1, _BLOCK_FRAMES // bucket)
            maxima = []
            for samples in sound.blocks(blocksize=block, dtype="float32", always_2d=True):
                magnitude = np.abs(samples)
                short = (-len(magnitude)) % bucket
                if short:
                    magnitude = np.concatenate([magnitude, np.zeros((short, channels), dtype=np.float32)])
                maxima.append(magnitude.reshape(-1, bucket, channels).max(axis=1))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFormatError(f"recording {sha256[:12]}: cannot decode: {exc}") from None
    table = np.minimum(np.concatenate(maxima), 1.0) if maxima else np.zeros((0, channels), np.float32)
    rounded = np.round(table.astype(np.float64), 3)
    return Peaks(
        sha256=sha256,
        duration_s=frames / rate,
        sample_rate=rate,
        points=len(rounded),
        channels=tuple(tuple(float(v) for v in rounded[:, c]) for c in range(channels)),
    )


class PeaksCache:
    """A bounded LRU of computed peaks; one lock, so two viewers of a new call compute its peaks once."""

    def __init__(self, entries: int = _CACHE_ENTRIES) -> None:
        self._entries = entries
        self._items: OrderedDict[tuple[str, int], Peaks] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sha256: str, points: int, open_blob: _Opener) -> Peaks:
        """The peaks of blob ``sha256``, computed from ``open_blob(sha256)`` on a miss."""
        key = (sha256, points)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
            with open_blob(sha256) as handle:
                peaks = compute_peaks(sha256, handle, points=points)
            self._items[key] = peaks
            while len(self._items) > self._entries:
                self._items.popitem(last=False)
            return peaks

    def forget(self, sha256: str) -> None:
        """Drop the peaks of a blob that was deleted."""
        with self._lock:
            for key in [key for key in self._items if key[0] == sha256]:
                del self._items[key]


peaks_cache = PeaksCache()
"""The process's peaks, shared by every request."""
