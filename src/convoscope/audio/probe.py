"""Probe uploaded bytes: is this a recording, and of what shape?

The server probes a recording before it stores a byte of it, so a JPEG named ``call.wav`` or a half-
uploaded file is refused with a 422 instead of surfacing later as a broken player or a wrong duration.
libsndfile (through ``soundfile``) does the decoding; one thing it forgives that we must not is a WAV cut
short: it silently reports the frames that are present, so the header's declared data size is compared
with the bytes actually there. A large recording (a whole call carried in a webhook, a downloaded vendor
file) is probed from its file on disk (:func:`probe_audio_file`) without reading it into memory.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import soundfile as sf

from ..errors import AudioFormatError

__all__ = ["AudioInfo", "probe_audio", "probe_audio_file"]

# Data chunk sizes that mean "unknown" (a writer that could not seek back to fill it in).
_UNKNOWN_SIZES = {0xFFFFFFFF}
# Formats whose frame count comes from a header; decoding the last frames checks they are all there.
_DECODE_TAIL = {"flac", "ogg", "mp3"}
_TAIL_FRAMES = 4096


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What a recording is: container (``wav``, ``flac``, ``mp3``, ``ogg``...), encoding and shape."""

    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    duration_s: float


def _name(filename: str | None) -> str:
    return f"{filename}: " if filename else ""


def _detail(exc: Exception) -> str:
    """libsndfile's own words, without the buffer's repr that soundfile puts in front of them."""
    if isinstance(exc, sf.LibsndfileError):
        return str(exc.error_string).strip()
    return str(exc)


def _check_wav_data_size(handle: BinaryIO, size: int, where: str) -> None:
    """Refuse a RIFF/WAVE file whose ``data`` chunk declares more bytes than the file holds."""
    offset = 12
    while offset + 8 <= size:
        handle.seek(offset)
        header = handle.read(8)
        if len(header) < 8:
            break
        chunk_id = header[:4]
        (declared,) = struct.unpack_from("<I", header, 4)
        body = offset + 8
        if chunk_id == b"data":
            present = size - body
            if declared not in _UNKNOWN_SIZES and declared > present:
                raise AudioFormatError(
                    f"{where}truncated WAV: the data chunk declares {declared} bytes "
                    f"but only {present} are present"
                )
            return
        offset = body + declared + (declared & 1)
    raise AudioFormatError(f"{where}WAV file has no data chunk (truncated or not audio)")


def _check_tail(handle: BinaryIO, info: AudioInfo, where: str) -> None:
    """Decode the last frames of a compressed file: a cut-off stream cannot deliver what its header claims."""
    start = max(0, info.frames - _TAIL_FRAMES)
    try:
        handle.seek(0)
        with sf.SoundFile(handle) as sound:
            sound.seek(start)
            got = len(sound.read(info.frames - start, dtype="int16", always_2d=True))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFormatError(f"{where}truncated or corrupt {info.format.upper()}: {_detail(exc)}") from None
    if got < info.frames - start:
        raise AudioFormatError(
            f"{where}truncated {info.format.upper()}: the header declares {info.frames} frames "
            f"but only {start + got} can be decoded"
        )


def probe_audio(data: bytes, *, filename: str | None = None) -> AudioInfo:
    """Describe the recording in ``data``, or raise :class:`AudioFormatError` saying why it is not one.

    ``filename`` only names the file in error messages; the format is read from the bytes themselves, so a
    wrong extension neither helps nor hurts.
    """
    return _probe(io.BytesIO(data), len(data), _name(filename))


def probe_audio_file(path: Path, *, filename: str | None = None) -> AudioInfo:
    """:func:`probe_audio` of the file at ``path``, read from disk as needed rather than loaded whole.

    ``filename`` names the recording in error messages (the path is usually a temporary file's).
    """
    with path.open("rb") as handle:
        return _probe(handle, path.stat().st_size, _name(filename))


def _probe(handle: BinaryIO, size: int, where: str) -> AudioInfo:
    if size == 0:
        raise AudioFormatError(f"{where}empty recording (0 bytes)")
    head = handle.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        _check_wav_data_size(handle, size, where)
    try:
        handle.seek(0)
        raw = sf.info(handle)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioFormatError(f"{where}not a readable audio file ({size} bytes): {_detail(exc)}") from None
    if raw.samplerate <= 0 or raw.channels <= 0:
        raise AudioFormatError(
            f"{where}audio header is invalid: {raw.samplerate} Hz, {raw.channels} channels"
        )
    if raw.frames <= 0:
        raise AudioFormatError(f"{where}recording contains no audio frames")
    info = AudioInfo(
        format=str(raw.format).lower(),
        subtype=str(raw.subtype),
        sample_rate=int(raw.samplerate),
        channels=int(raw.channels),
        frames=int(raw.frames),
        duration_s=int(raw.frames) / int(raw.samplerate),
    )
    if info.format in _DECODE_TAIL:
        _check_tail(handle, info, where)
    return info
