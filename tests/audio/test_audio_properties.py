"""Property: recording bytes either decode to what they hold or are refused with an AudioFormatError.

WAV files are written byte by byte from drawn header fields (channels, sample rate, sample width, format
tag, declared data size, extra chunks), honest or lying, and real FLAC, OGG and MP3 files are cut short,
corrupted or followed by random bytes. :func:`probe_audio` (bytes) and :func:`probe_audio_file` (disk) must
agree, and a recording the probe accepts must load with ``load_recording``, giving back the samples the
file holds; any other exception (a ``ValueError`` from the resampler, a ``struct.error``, a ``MemoryError``)
is a bug the server would answer with a 500.
"""

from __future__ import annotations

import io
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from convoscope.audio.load import load_recording
from convoscope.audio.probe import AudioInfo, probe_audio, probe_audio_file
from convoscope.errors import AudioFormatError
from convoscope.model import Role

PCM, FLOAT = 1, 3


def wav(
    *,
    channels: int,
    rate: int,
    bits: int,
    tag: int,
    data: bytes,
    declared: int | None = None,
    extra_chunk: bytes | None = None,
    riff_size: int | None = None,
) -> bytes:
    """A RIFF/WAVE file from its fields; ``declared`` may lie about the data chunk's size."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, (rate * block) & 0xFFFFFFFF, block & 0xFFFF, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if extra_chunk is not None:
        chunks += (
            b"LIST" + struct.pack("<I", len(extra_chunk)) + extra_chunk + b"\x00" * (len(extra_chunk) & 1)
        )
    size = len(data) if declared is None else declared
    chunks += b"data" + struct.pack("<I", size & 0xFFFFFFFF) + data
    total = 4 + len(chunks) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", total & 0xFFFFFFFF) + b"WAVE" + chunks


def _probe_both(data: bytes) -> AudioInfo | AudioFormatError:
    """The probe of the bytes and of the same bytes on disk: both must give the same answer."""
    try:
        from_bytes: AudioInfo | AudioFormatError = probe_audio(data, filename="call.wav")
    except AudioFormatError as exc:
        from_bytes = exc
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        try:
            from_file: AudioInfo | AudioFormatError = probe_audio_file(path, filename="call.wav")
        except AudioFormatError as exc:
            from_file = exc
    if isinstance(from_bytes, AudioFormatError):
        assert isinstance(from_file, AudioFormatError), from_file
        assert str(from_bytes) == str(from_file)
        assert str(from_bytes).startswith("call.wav: ")
    else:
        assert from_bytes == from_file
    return from_bytes


def _loads_or_refuses(data: bytes, info: AudioInfo) -> None:
    """A probed recording loads (mixed to one track, and per channel) or is refused with a reason."""
    try:
        mono = load_recording(data, channel_map=None, mono_role=Role.AGENT)
    except AudioFormatError as exc:
        assert str(exc).strip()
        return
    track = mono.tracks[Role.AGENT]
    assert track.dtype == np.float32 and np.isfinite(track).all()
    expected = info.frames * 16000 / info.sample_rate
    assert abs(len(track) - expected) <= max(2.0, expected * 0.01), (len(track), expected)
    if info.channels == 2:
        split = load_recording(data, channel_map=[Role.USER, Role.AGENT])
        assert len(split.tracks[Role.USER]) == len(track)


# Rates a header may declare: usual ones, and ones no recording has. A tiny file at 1 Hz lasts minutes,
# so frame counts are kept small enough that the resampled track stays small.
_rates = st.sampled_from([1, 7, 8000, 11025, 16000, 44100, 192000, 2**31 - 1, 2**32 - 1, 0])
# Each drawn half the time from what real files carry, half from what none does.
_channels = st.one_of(st.sampled_from([1, 2]), st.sampled_from([0, 3, 8, 255, 65535]))
_bits = st.one_of(st.sampled_from([8, 16, 24, 32]), st.sampled_from([0, 1, 12, 64]))
_tags = st.one_of(st.sampled_from([PCM, FLOAT]), st.sampled_from([0, 2, 6, 7, 0xFFFE, 0x1234]))


@settings(max_examples=250, deadline=None)
@given(
    channels=_channels,
    rate=_rates,
    bits=_bits,
    tag=_tags,
    data=st.binary(max_size=256),
    declared=st.one_of(st.none(), st.sampled_from([0, 1, 255, 2**31, 2**32 - 2, 2**32 - 1])),
    extra_chunk=st.one_of(st.none(), st.binary(max_size=16)),
    riff_size=st.one_of(st.none(), st.sampled_from([0, 4, 2**32 - 1])),
    appended=st.binary(max_size=24),
)
def test_wav_headers_decode_or_are_refused(
    channels: int,
    rate: int,
    bits: int,
    tag: int,
    data: bytes,
    declared: int | None,
    extra_chunk: bytes | None,
    riff_size: int | None,
    appended: bytes,
) -> None:
    body = (
        wav(
            channels=channels,
            rate=rate,
            bits=bits,
            tag=tag,
            data=data,
            declared=declared,
            extra_chunk=extra_chunk,
            riff_size=riff_size,
        )
        + appended
    )
    info = _probe_both(body)
    if isinstance(info, AudioFormatError):
        return
    assert info.sample_rate > 0 and info.channels > 0 and info.frames > 0
    assert info.duration_s == info.frames / info.sample_rate
    if declared is not None and declared not in (2**32 - 1,):
        # A data chunk that declares more than the file holds is never accepted.
        assert declared <= len(data) + len(appended)
    _loads_or_refuses(body, info)


@settings(max_examples=100, deadline=None)
@given(
    channels=st.integers(1, 2),
    rate=st.sampled_from([8000, 16000, 44100]),
    samples=st.lists(st.integers(-(2**15), 2**15 - 1), min_size=1, max_size=200),
    appended=st.binary(max_size=16),
)
def test_honest_pcm_wav_decodes_to_its_samples(
    channels: int, rate: int, samples: list[int], appended: bytes
) -> None:
    frames = len(samples) // channels or 1
    values = (samples * channels)[: frames * channels]
    data = struct.pack(f"<{len(values)}h", *values)
    body = wav(channels=channels, rate=rate, bits=16, tag=PCM, data=data) + appended
    info = _probe_both(body)
    assert isinstance(info, AudioInfo), info
    assert (info.format, info.channels, info.sample_rate, info.frames) == ("wav", channels, rate, frames)
    decoded, _ = sf.read(io.BytesIO(body), dtype="int16", always_2d=True)
    assert decoded.reshape(-1).tolist() == values
    loaded = load_recording(body, channel_map=None, mono_role=Role.USER, target_rate_hz=rate)
    mixed = np.asarray(values, dtype=np.float32).reshape(frames, channels).mean(axis=1) / 2**15
    np.testing.assert_allclose(loaded.tracks[Role.USER], mixed, atol=1e-6)


def _encoded(fmt: str, subtype: str | None) -> bytes:
    rng = np.random.default_rng(7)
    tone = (0.3 * np.sin(np.arange(16000 * 2) * 2 * np.pi * 440 / 16000)).astype(np.float32)
    signal = np.stack([tone, tone * 0.5 + rng.normal(0, 0.01, tone.size).astype(np.float32)], axis=1)
    out = io.BytesIO()
    sf.write(out, signal, 16000, format=fmt, subtype=subtype)
    return out.getvalue()


ENCODED = {
    "flac": _encoded("FLAC", "PCM_16"),
    "ogg": _encoded("OGG", "VORBIS"),
    "mp3": _encoded("MP3", "MPEG_LAYER_III"),
    "wav": _encoded("WAV", "FLOAT"),
}


@pytest.mark.parametrize("name", sorted(ENCODED))
def test_the_seed_files_decode(name: str) -> None:
    info = probe_audio(ENCODED[name])
    assert (info.channels, info.sample_rate) == (2, 16000)
    _loads_or_refuses(ENCODED[name], info)


@st.composite
def damaged_files(draw: st.DrawFn) -> bytes:
    body = ENCODED[draw(st.sampled_from(sorted(ENCODED)))]
    damage = draw(st.sampled_from(["cut", "cut", "flip", "append", "random"]))
    if damage == "cut":
        return body[: draw(st.integers(0, len(body) - 1))]
    if damage == "flip":
        at = draw(st.integers(0, len(body) - 1))
        return body[:at] + bytes([body[at] ^ draw(st.integers(1, 255))]) + body[at + 1 :]
    if damage == "append":
        return body + draw(st.binary(min_size=1, max_size=64))
    return draw(st.binary(max_size=128))


@settings(max_examples=120, deadline=None)
@given(body=damaged_files())
def test_damaged_compressed_files_decode_or_are_refused(body: bytes) -> None:
    info = _probe_both(body)
    if isinstance(info, AudioInfo):
        _loads_or_refuses(body, info)


def test_an_mp3_cut_short_is_refused_as_truncated() -> None:
    # Found by the property above: the MP3's header declared the whole call's frames, the probe took its
    # word, and a half-uploaded file was kept with the full duration.
    body = ENCODED["mp3"]
    with pytest.raises(AudioFormatError, match="truncated MP3"):
        probe_audio(body[: len(body) // 2], filename="call.mp3")
