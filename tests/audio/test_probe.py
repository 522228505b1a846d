"""probe_audio: real files of each kind are described; anything else is refused with a reason."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from convoscope.audio import AudioInfo, probe_audio
from convoscope.demo import demo_recordings
from convoscope.errors import AudioFormatError, InputError
from convoscope.testing import stereo_wav_bytes, write_stereo_wav


def _encode(audio: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _tone(seconds: float, rate: int, channels: int) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    mono = 0.4 * np.sin(2 * np.pi * 440 * t)
    return np.stack([mono] * channels, axis=1)


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate", "channels"),
    [
        ("WAV", "PCM_16", 16000, 2),
        ("WAV", "FLOAT", 44100, 1),
        ("WAV", "PCM_24", 8000, 2),
        ("FLAC", "PCM_16", 8000, 2),
        ("OGG", "VORBIS", 16000, 1),
    ],
)
def test_describes_real_audio(fmt: str, subtype: str, rate: int, channels: int) -> None:
    data = _encode(_tone(1.25, rate, channels), rate, fmt, subtype)
    info = probe_audio(data, filename=f"call.{fmt.lower()}")
    assert info == AudioInfo(
        format=fmt.lower(),
        subtype=subtype,
        sample_rate=rate,
        channels=channels,
        frames=round(1.25 * rate),
        duration_s=round(1.25 * rate) / rate,
    )


def test_the_extension_does_not_decide_the_format() -> None:
    data = _encode(_tone(0.5, 8000, 1), 8000, "FLAC", "PCM_16")
    assert probe_audio(data, filename="misnamed.wav").format == "flac"


def test_file_from_the_test_kit(tmp_path: Path) -> None:
    path = write_stereo_wav(
        tmp_path / "call.wav",
        left=[(0.2, 1.0)],
        right=[(1.3, 2.0)],
        duration_s=2.5,
        sample_rate=8000,
        noise_db=-60,
    )
    info = probe_audio(path.read_bytes())
    assert (info.format, info.subtype, info.channels, info.sample_rate, info.frames) == (
        "wav",
        "PCM_16",
        2,
        8000,
        20000,
    )
    assert info.duration_s == pytest.approx(2.5)
    audio, _ = sf.read(path, dtype="float32")
    left_active = np.abs(audio[:, 0]) > 0.02
    right_active = np.abs(audio[:, 1]) > 0.02
    assert left_active[int(0.3 * 8000) : int(0.9 * 8000)].mean() > 0.8
    assert not left_active[int(1.1 * 8000) :].any()
    assert right_active[int(1.4 * 8000) : int(1.9 * 8000)].mean() > 0.8
    assert not right_active[: int(1.25 * 8000)].any()
    assert stereo_wav_bytes(
        left=[(0.2, 1.0)], right=[(1.3, 2.0)], duration_s=2.5, sample_rate=8000, noise_db=-60
    ) == (path.read_bytes())


def test_shipped_demo_recordings() -> None:
    for demo in demo_recordings():
        info = probe_audio(demo.read_bytes(), filename=demo.file)
        assert (info.format, info.channels, info.sample_rate) == ("flac", 2, demo.sample_rate)
        assert info.duration_s == pytest.approx(demo.duration_s, abs=1e-3)


def _jpeg() -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) * 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (_jpeg(), "not a readable audio file"),
        (b"call_id,started_at\nabc,2025-01-01\n" * 20, "not a readable audio file"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 200, "not a readable audio file"),
    ],
)
def test_refuses_what_is_not_audio(data: bytes, message: str) -> None:
    with pytest.raises(AudioFormatError, match=message) as caught:
        probe_audio(data, filename="upload.wav")
    assert str(caught.value).startswith("upload.wav: ")
    assert "BytesIO" not in str(caught.value)
    assert isinstance(caught.value, InputError)


def test_refuses_a_truncated_wav() -> None:
    whole = stereo_wav_bytes(left=[(0.1, 0.8)], right=[], duration_s=1.0, sample_rate=8000)
    cut = whole[: len(whole) - 4000]
    with pytest.raises(
        AudioFormatError, match=r"truncated WAV: the data chunk declares 32000 bytes but only 28000"
    ):
        probe_audio(cut)
    # What the check guards against: the decoder alone would accept the cut file with fewer frames.
    assert sf.info(io.BytesIO(cut)).frames < 8000


def test_refuses_a_wav_header_without_data() -> None:
    whole = stereo_wav_bytes(left=[], right=[], duration_s=0.1, sample_rate=8000)
    with pytest.raises(AudioFormatError, match="no data chunk"):
        probe_audio(whole[:36])


def test_refuses_a_wav_with_no_frames() -> None:
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36, b"WAVE", b"fmt ", 16, 1, 2, 8000, 32000, 4, 16, b"data", 0
    )
    with pytest.raises(AudioFormatError, match="no audio frames"):
        probe_audio(header)


def test_refuses_a_truncated_flac() -> None:
    data = _encode(_tone(3.0, 8000, 2), 8000, "FLAC", "PCM_16")
    with pytest.raises(AudioFormatError, match="FLAC"):
        probe_audio(data[: len(data) // 2], filename="cut.flac")


def test_kit_rejects_intervals_outside_the_file() -> None:
    with pytest.raises(ValueError, match="interval"):
        stereo_wav_bytes(left=[(0.5, 1.5)], right=[], duration_s=1.0)
    with pytest.raises(ValueError, match="interval"):
        stereo_wav_bytes(left=[], right=[(0.8, 0.2)], duration_s=1.0)
