"""Probe uploaded bytes: is this a recording, and of what shape?

The server probes a recording before it stores a byte of it, so a JPEG named ``call.wav`` or a half-
uploaded file is refused with a 422 instead of surfacing later as a broken player or a wrong duration.
libsndfile (through ``soundfile``) does the decoding; one thing it forgives that we must not is a WAV cut
short: it silently reports the frames that are present, so the header's declared data size is compared
with the bytes actually there.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import soundfile as sf

from ..errors import AudioFormatError

__all__ = ["AudioInfo", "probe_audio"]

# Data chunk sizes that mean "unknown" (a writer that could not seek back to fill it in).
_UNKNOWN_SIZES = {0xFFFFFFFF}
# Formats whose frame count comes from a header; decoding the last frames checks they are all there.
_DECODE_TAIL = {"flac", "ogg"}
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


def _check_wav_data_size(data: bytes, where: str) -> None:
    """Refuse a RIFF/WAVE file whose ``data`` chunk declares more bytes than the file holds."""
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = offset + 8
        if chunk_id == b"data":
            present = len(data) - body
            if size not in _UNKNOWN_SIZES and size > present:
                raise AudioFormatError(
                    f"{where}truncated WAV: the data chunk declares {size} bytes "
                    f"but only {present} are present"
                )
            return
        offset = body + size + (size & 1)
    raise AudioFormatError(f"{where}WAV file has no data chunk (truncated or not audio)")


def _check_tail(data: bytes, info: AudioInfo, where: str) -> None:
    """Decode the last frames of a compressed file: a cut-off stream cannot deliver what its header claims."""
    start = max(0, info.frames - _TAIL_FRAMES)
    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            handle.seek(start)
            got = len(handle.read(info.frames - start, dtype="int16", always_2d=True))
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
    where = _name(filename)
    if not data:
        raise AudioFormatError(f"{where}empty recording (0 bytes)")
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        _check_wav_data_size(data, where)
    try:
        raw = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioFormatError(
            f"{where}not a readable audio file ({len(data)} bytes): {_detail(exc)}"
        ) from None
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
        _check_tail(data, info, where)
    return info
