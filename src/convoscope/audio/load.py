"""Load a call recording into one mono float32 track per party, on the call clock, at one sample rate.

Turn-taking metrics need to know who is heard on which channel, and that is never guessed: the caller
passes the channel map (from the vendor's documented convention or the user's setting). Without one, a
recording is "not scorable" for overlap metrics, and the loader says so instead of picking an order.
Two layouts are accepted: one multi-channel file (stereo, one party per channel) or a pair of mono files
(one per party, as some frameworks record each side separately). Every format libsndfile reads is
accepted (WAV PCM/float/mu-law/A-law, FLAC, MP3, OGG) after :func:`probe_audio` has refused truncated or
non-audio bytes, and every rate is resampled with soxr to one target rate so VAD frames line up.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr  # type: ignore[import-untyped]

from ..errors import AudioFormatError
from ..model import Role
from .probe import AudioInfo, probe_audio

__all__ = ["LoadedAudio", "Source", "load_recording"]

Source = str | Path | bytes
"""A recording: a file path, or the file's bytes (as uploaded)."""

ChannelMap = Mapping[int, Role] | Sequence[Role]
"""Channel (or file) number -> the party heard on it; a sequence lists the roles in channel order."""

NOT_SCORABLE = "channel map unknown: not scorable for overlap metrics"


@dataclass(frozen=True, slots=True)
class LoadedAudio:
    """One mono float32 track per party, all the same length, at ``rate_hz``, indexed by call time.

    ``tracks[role][n]`` is the sample at call time ``n / rate_hz`` s: the clock offset has already been
    applied (``offset_s`` records it) and the shorter file of a pair has been padded with silence
    (``padded_s`` records how much, per role). ``overlap_scorable`` is False for a mono analysis, where
    one track holds every party and overlaps cannot be told apart. Arrays are excluded from equality.
    """

    tracks: Mapping[Role, npt.NDArray[np.float32]] = field(compare=False)
    rate_hz: int
    original_rate_hz: int
    duration_s: float
    sources: tuple[str, ...]
    formats: tuple[AudioInfo, ...]
    offset_s: float = 0.0
    padded_s: Mapping[Role, float] = field(default_factory=dict)
    overlap_scorable: bool = True

    @property
    def roles(self) -> tuple[Role, ...]:
        """The parties present, in channel order."""
        return tuple(self.tracks)


def _read(source: Source, default_name: str) -> tuple[bytes, str]:
    """The file's bytes and the name to put in error messages."""
    if isinstance(source, bytes):
        return source, default_name
    path = Path(source)
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise AudioFormatError(f"{path}: cannot read recording: {exc.strerror or exc}") from None


def _decode(data: bytes, name: str) -> tuple[npt.NDArray[np.float32], AudioInfo]:
    """Probe (refusing truncated or non-audio bytes) and decode to a ``(frames, channels)`` float32 array."""
    info = probe_audio(data, filename=name)
    try:
        samples, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFormatError(f"{name}: cannot decode {info.format.upper()}: {exc}") from None
    if samples.shape[0] == 0:
        raise AudioFormatError(f"{name}: recording contains no audio frames")
    if not np.isfinite(samples).all():
        raise AudioFormatError(f"{name}: recording contains NaN or infinite samples")
    return np.ascontiguousarray(samples, dtype=np.float32), info


def _normalise_map(channel_map: ChannelMap | None) -> dict[int, Role]:
    if channel_map is None:
        return {}
    if isinstance(channel_map, Mapping):
        return {int(channel): Role(role) for channel, role in channel_map.items()}
    return {channel: Role(role) for channel, role in enumerate(channel_map)}


def _check_map(mapping: dict[int, Role], count: int, what: str, names: str) -> None:
    """Refuse a map that does not name exactly one distinct role per channel (or file)."""
    if len(mapping) != count:
        raise AudioFormatError(
            f"{names}: the channel map names {len(mapping)} {what}s but the recording has {count}"
        )
    if sorted(mapping) != list(range(count)):
        raise AudioFormatError(
            f"{names}: the channel map must name {what}s 0..{count - 1}, got {sorted(mapping)}"
        )
    if len(set(mapping.values())) != count:
        raise AudioFormatError(f"{names}: the channel map gives two {what}s the same role: {mapping}")


def _resample(track: npt.NDArray[np.float32], from_hz: int, to_hz: int) -> npt.NDArray[np.float32]:
    if from_hz == to_hz:
        return np.ascontiguousarray(track, dtype=np.float32)
    resampled = soxr.resample(track, from_hz, to_hz, quality="HQ")
    return np.ascontiguousarray(resampled, dtype=np.float32)


def _shift(track: npt.NDArray[np.float32], offset_samples: int) -> npt.NDArray[np.float32]:
    """Move audio onto the call clock: prepend silence for a positive offset, drop the head for a negative."""
    if offset_samples > 0:
        return np.concatenate([np.zeros(offset_samples, dtype=np.float32), track])
    if offset_samples < 0:
        return track[-offset_samples:]
    return track


def load_recording(
    source: Source,
    *,
    channel_map: ChannelMap | None,
    second: Source | None = None,
    target_rate_hz: int = 16000,
    offset_s: float = 0.0,
    mono_role: Role | None = None,
) -> LoadedAudio:
    """Decode a recording into one track per party at ``target_rate_hz`` on the call clock.

    ``channel_map`` gives the role of each channel of ``source`` or, when ``second`` is given, the role
    of each file (``[Role.USER, Role.AGENT]`` means ``source`` is the user's side). It is required: a
    missing or empty map raises :class:`AudioFormatError` ("channel map unknown: not scorable for
    overlap metrics") unless ``mono_role`` asks for a single-track analysis, in which every channel is
    mixed down and heard as that role (``overlap_scorable`` is then False). ``offset_s`` is the call time
    of the recording's first sample (positive: the recording started late; negative: it started before
    the call); it is applied so that sample ``n`` is at call time ``n / target_rate_hz``. A pair of mono
    files of different lengths is padded at the end with silence and the padding recorded.
    """
    if target_rate_hz <= 0:
        raise ValueError(f"target_rate_hz must be positive, got {target_rate_hz}")
    if not math.isfinite(offset_s):
        raise ValueError(f"offset_s must be finite, got {offset_s!r}")
    data, name = _read(source, "recording")
    samples, info = _decode(data, name)
    mapping = _normalise_map(channel_map)
    infos: tuple[AudioInfo, ...] = (info,)
    names: tuple[str, ...] = (name,)
    padded: dict[Role, float] = {}
    columns: dict[Role, npt.NDArray[np.float32]]

    if mono_role is not None:
        if second is not None:
            raise AudioFormatError(f"{name}: a mono analysis takes one recording, not a pair")
        columns = {mono_role: samples.mean(axis=1, dtype=np.float32)}
    elif second is None:
        if not mapping:
            raise AudioFormatError(f"{name}: {NOT_SCORABLE}")
        if info.channels == 1 and len(mapping) > 1:
            raise AudioFormatError(
                f"{name}: the recording is mono (1 channel) but the channel map names {len(mapping)} "
                "channels; two-party analysis needs a stereo file or a pair of mono files"
            )
        _check_map(mapping, info.channels, "channel", name)
        columns = {mapping[channel]: samples[:, channel] for channel in range(info.channels)}
    else:
        second_data, second_name = _read(second, "second recording")
        if second_name == name:
            second_name = f"{name} (second)"
        second_samples, second_info = _decode(second_data, second_name)
        infos, names = (info, second_info), (name, second_name)
        if not mapping:
            raise AudioFormatError(f"{name}, {second_name}: {NOT_SCORABLE}")
        _check_map(mapping, 2, "file", f"{name}, {second_name}")
        for file_name, file_info in zip(names, infos, strict=True):
            if file_info.channels != 1:
                raise AudioFormatError(
                    f"{file_name}: a pair of recordings must be mono files, one per party, but this one "
                    f"has {file_info.channels} channels"
                )
        pair = [
            _resample(samples[:, 0], info.sample_rate, target_rate_hz),
            _resample(second_samples[:, 0], second_info.sample_rate, target_rate_hz),
        ]
        length = max(len(track) for track in pair)
        columns = {}
        for index, track in enumerate(pair):
            role = mapping[index]
            padded[role] = (length - len(track)) / target_rate_hz
            columns[role] = np.concatenate([track, np.zeros(length - len(track), dtype=np.float32)])

    offset_samples = round(offset_s * target_rate_hz)
    tracks: dict[Role, npt.NDArray[np.float32]] = {}
    for role, column in columns.items():
        track = column if second is not None else _resample(column, info.sample_rate, target_rate_hz)
        tracks[role] = _shift(track, offset_samples)
    length = len(next(iter(tracks.values())))
    if length == 0:
        raise AudioFormatError(
            f"{name}: the clock offset {offset_s} s removes the whole recording ({info.duration_s:.3f} s)"
        )
    return LoadedAudio(
        tracks=tracks,
        rate_hz=target_rate_hz,
        original_rate_hz=info.sample_rate,
        duration_s=length / target_rate_hz,
        sources=names,
        formats=infos,
        offset_s=offset_s,
        padded_s=padded,
        overlap_scorable=mono_role is None,
    )
